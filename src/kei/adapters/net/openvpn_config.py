"""An OpenVPN tunnel's settings, checked, and the configuration file kei writes from them.

Why generate the file: upstream's OpenVPN mode took a config path and never used it, so
"configure" could only start what was already on disk. Here every directive comes from
a checked setting (no free-form directives: a setting can never smuggle in ``up`` or
``script-security``), certificates and keys are named by path only, and the digest the
log signs covers the file and each key file's SHA-256, never a key's bytes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kei.adapters.net.vpn_table import Table, unix_socket_path

HEADER: Final = (
    "# Written by kei for net tunnel {name}; kei rewrites this file, edit kei's settings.\n"
)
DEVICE: Final = re.compile(r"(tun|tap)[A-Za-z0-9_.-]{0,12}")
HOST: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")
CN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# Setting → directive; the secret ones must be private files (vpn_table.Table.read_file).
FILE_KEYS: Final = {"ca_file": "ca", "cert_file": "cert", "key_file": "key",
                    "tls_crypt_file": "tls-crypt"}  # fmt: skip
SECRET_KEYS: Final = frozenset({"key_file", "tls_crypt_file"})
KNOWN: Final = frozenset(
    {"role", "proto", "port", "local", "remote", "subnet", "device", "server_name",
     "management_socket", "launch", "config_dir", "runtime_dir", "start_timeout", *FILE_KEYS}
)  # fmt: skip
LAUNCHES: Final = ("auto", "direct", "systemctl")
# sd_booted(3): systemd is PID 1 exactly when this directory exists.
SYSTEMD_MARKER = Path("/run/systemd/system")


def systemd_is_init() -> bool:
    """Whether systemd runs this machine (false in most containers, and here)."""
    return SYSTEMD_MARKER.is_dir()


@dataclass(frozen=True)
class OpenVpnSettings:
    """One ``mode = "openvpn"`` tunnel, every value checked; see docs/net.md."""

    name: str
    role: str
    public: bool
    allowed_ports: tuple[int, ...]
    proto: str
    port: int
    local: str | None
    remote: str | None
    subnet: str | None
    device: str
    server_name: str | None
    files: dict[str, Path]
    management_socket: Path
    launch: str
    config_dir: Path
    runtime_dir: Path
    start_timeout: int
    netns: str | None
    table: Table

    @property
    def unit(self) -> str:
        """The systemd unit Debian's openvpn package runs this tunnel as."""
        return f"openvpn-{self.role}@{self.name}.service"

    def render(self) -> str:
        """The configuration file's text."""
        lines = [HEADER.format(name=self.name).rstrip("\n"), f"dev {self.device}"]
        if self.role == "server":
            network = ipaddress.ip_network(self.subnet or "")
            lines += [
                f"proto {self.proto}" + ("-server" if self.proto == "tcp" else ""),
                f"port {self.port}",
                *([f"local {self.local}"] if self.local else []),
                "topology subnet",
                f"server {network.network_address} {network.netmask}",
                "keepalive 10 60",
                "remote-cert-tls client",
                "dh none",
            ]
        else:
            lines += [
                "client",
                f"proto {self.proto}" + ("-client" if self.proto == "tcp" else ""),
                f"remote {self.remote} {self.port}",
                "nobind",
                "resolv-retry infinite",
                # over UDP, tell the server on the way out: it drops the peer at once
                *(["explicit-exit-notify 1"] if self.proto == "udp" else []),
                "remote-cert-tls server",
                *([f"verify-x509-name {self.server_name} name"] if self.server_name else []),
            ]
        for key, directive in FILE_KEYS.items():
            if key in self.files:
                lines.append(f'{directive} "{self.files[key]}"')
        lines += [f'management "{self.management_socket}" unix', "verb 3", ""]
        return "\n".join(lines)

    def config_sha256(self) -> str:
        """SHA-256 of the file text and of each key file's digest (never its bytes)."""
        digest = hashlib.sha256(self.render().encode())
        for key, path in sorted(self.files.items()):
            file_digest = self.table.file_digest(key, path, secret=key in SECRET_KEYS)
            digest.update(f"{key} {file_digest}\n".encode())
        return digest.hexdigest()


def read_settings(name: str, raw: dict[str, object], base_dir: Path) -> OpenVpnSettings:
    """Check tunnel ``name``'s table; :class:`NetConfigError` names the first bad key."""
    table = Table(name, raw, base_dir)
    table.refuse_unknown(KNOWN)
    role = table.choice("role", ("server", "client"), "server")
    server = role == "server"
    subnet = remote = None
    if server:
        subnet = table.networks("subnet")[0]
        if ipaddress.ip_network(subnet).version != 4 or ipaddress.ip_network(subnet).prefixlen > 29:
            raise table.fail("subnet", "must be an IPv4 network of /29 or larger")
    else:
        remote = table.text("remote", pattern=HOST)
    files = {key: table.path(key) for key in ("ca_file", "cert_file", "key_file")}
    if (crypt := table.optional_path("tls_crypt_file")) is not None:
        files["tls_crypt_file"] = crypt
    runtime_dir = table.path("runtime_dir", base_dir / "run" / "net" / "openvpn" / name)
    launch = table.choice("launch", LAUNCHES, "auto")
    netns = table.netns()
    if launch == "auto":
        launch = "systemctl" if systemd_is_init() and netns is None else "direct"
    if launch == "systemctl" and netns is not None:
        raise table.fail(
            "netns", 'a namespace needs launch = "direct" (the unit runs in the host\'s)'
        )
    default_socket = runtime_dir / "mgmt.sock"
    if launch == "systemctl":
        default_socket = Path(f"/run/openvpn-{role}/{name}.sock")
    return OpenVpnSettings(
        name=name,
        role=role,
        public=table.flag("public", server),
        allowed_ports=table.ports(),
        proto=table.choice("proto", ("udp", "tcp"), "udp"),
        port=table.integer("port", 1194, 1, 65535),
        local=table.optional("local", pattern=HOST) if server else None,
        remote=remote,
        subnet=subnet,
        device=table.text("device", "tun", pattern=DEVICE),
        server_name=None if server else table.optional("server_name", pattern=CN),
        files=files,
        management_socket=unix_socket_path(
            table, "management_socket", table.path("management_socket", default_socket)
        ),
        launch=launch,
        config_dir=table.path("config_dir", Path(f"/etc/openvpn/{role}")),
        runtime_dir=runtime_dir,
        start_timeout=table.integer("start_timeout", 15, 1, 600),
        netns=netns,
        table=table,
    )
