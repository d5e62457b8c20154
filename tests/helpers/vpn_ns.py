"""Helpers for the OpenVPN and IPsec tunnel tests (tests/net/test_openvpn*, test_ipsec*),
imported by name.

``make_pki`` makes a throwaway CA, a server and client certificates with ``openssl``;
``start_charon`` runs a strongSwan ``charon-systemd`` in a namespace *and* its own mount
namespace (``unshare -m`` with a tmpfs on /run, so two daemons never share a pid file),
with its own ``STRONGSWAN_CONF`` and a VICI socket in the test's directory. Every process they start
lives in a namespace the fixture removes, so ``netns_pair``'s teardown ends it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from netns import skip_tunnel


def openssl(*argv: str, cwd: Path) -> None:
    subprocess.run(["openssl", *argv], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path, *, server_cn: str = "server", client_cn: str = "alice") -> Pki:
    """A CA and two EC P-256 certificates (server and client usage) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=kei-test-ca", cwd=directory)  # fmt: skip
    for who, cn, usage in (
        ("server", server_cn, "serverAuth"),
        ("client", client_cn, "clientAuth"),
    ):
        openssl("req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={cn}",
                cwd=directory)  # fmt: skip
        (directory / f"{who}.ext").write_text(
            f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\n"
            f"extendedKeyUsage={usage}\n"
        )
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{who}.crt", "-days", "2",
                "-extfile", f"{who}.ext", cwd=directory)  # fmt: skip
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    return Pki(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll ``predicate()`` until true; fail the test naming ``what`` after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


CHARON_CONF = """\
charon {{
  load = random nonce openssl pem pkcs1 x509 pubkey hmac sha1 sha2 aes gcm kdf \
kernel-libipsec kernel-netlink socket-default vici
  install_routes = yes
  journal {{ default = -1 }}
  plugins {{
    vici {{ socket = unix://{socket} }}
  }}
}}
charon-systemd {{
  journal {{ default = -1 }}
  filelog {{
    log {{
      path = {log}
      default = 1
      ike = 2
      knl = 2
    }}
  }}
}}
"""


def start_charon(ns: str, directory: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    """strongSwan's charon in ``ns`` with ``kernel-libipsec`` (the kernel has no ESP),
    in its own mount namespace; its VICI socket once it answers, and the process (the
    namespace's teardown ends it; wait for it after)."""
    program = "/usr/sbin/charon-systemd"
    if not os.access(program, os.X_OK):
        skip_tunnel("needs charon-systemd (apt-get install charon-systemd)")
    if not Path("/dev/net/tun").exists():
        skip_tunnel("kernel-libipsec needs /dev/net/tun")
    directory.mkdir(parents=True, exist_ok=True)
    vici = directory / "charon.vici"
    conf = directory / "strongswan.conf"
    conf.write_text(CHARON_CONF.format(socket=vici, log=directory / "charon.log"))
    env = {**os.environ, "STRONGSWAN_CONF": str(conf)}
    inner = f"mount -t tmpfs tmpfs /run && exec {program}"
    with (directory / "charon.out").open("wb") as out:
        process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private",
             "sh", "-c", inner],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(vici))
            return vici, process
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    log = (directory / "charon.out").read_text(errors="replace")[-500:]
    raise AssertionError(f"charon in {ns} did not open {vici}: {log}")
