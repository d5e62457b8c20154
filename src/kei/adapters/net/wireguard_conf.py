"""A WireGuard tunnel's settings, checked, and the ``wg-quick`` file made from them.

``[tunnels.NAME]`` keys for ``mode = "wireguard"``::

    private_key_file = "keys/home.key"   # required: `wg genkey` output, mode 0600
    address = ["10.8.0.1/24"]            # the interface's addresses
    listen_port = 51820
    mtu = 1420
    interface = "wg-home"                # default: "wg-" and the name, cut to 15
    userspace = "auto"                   # auto | wireguard-go | kernel
    [[tunnels.NAME.peers]]
    public_key = "base64..."             # public: named inline
    preshared_key_file = "keys/psk"      # optional, a file like the private key
    endpoint = "203.0.113.5:51820"
    allowed_ips = ["10.8.0.2/32"]
    persistent_keepalive = 25

Every value that reaches the file is checked against its grammar (addresses and
networks parsed, endpoints ``host:port``, keys base64 of 32 bytes), so no value can
add a line to it: a ``PostUp`` smuggled in through an endpoint would be a command run
as root. ``DNS``, ``Table`` and the hooks are not offered. The file holds the private
key, so it is written 0600 into kei's runtime directory only while the tunnel is up.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import Struct
from nacl.public import PrivateKey

from kei.adapters.net import settings as st
from kei.domain.net.dump import is_public_key
from kei.errors import NetConfigError

KEYS: Final = frozenset({"private_key_file", "address", "listen_port", "mtu", "interface",
                         "userspace", "peers"})  # fmt: skip
PEER_KEYS: Final = frozenset({"public_key", "preshared_key_file", "endpoint", "allowed_ips",
                              "persistent_keepalive"})  # fmt: skip
USERSPACE: Final = ("auto", "wireguard-go", "kernel")
_IFACE: Final = re.compile(r"[A-Za-z0-9_=+.-]{1,15}")
_HOST: Final = re.compile(r"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253}):[0-9]{1,5}")
_USERSPACE: Final = re.compile("|".join(USERSPACE))
MOST_PEERS: Final = 1024


class WgPeer(Struct, frozen=True, kw_only=True):
    public_key: str
    preshared_key_file: Path | None = None
    endpoint: str | None = None
    allowed_ips: tuple[str, ...] = ()
    persistent_keepalive: int | None = None


class WgSettings(Struct, frozen=True, kw_only=True):
    """A WireGuard tunnel as configured (paths, not keys)."""

    name: str
    interface: str
    private_key_file: Path
    address: tuple[str, ...] = ()
    listen_port: int | None = None
    mtu: int | None = None
    userspace: str = "auto"
    netns: str | None = None
    public: bool = False
    allowed_ports: tuple[int, ...] = ()
    peers: tuple[WgPeer, ...] = ()


def parse_wireguard(name: str, table: Mapping[str, Any], base_dir: Path) -> WgSettings:
    """The checked settings of tunnel ``name``; ``NetConfigError`` on any mistake."""
    t = st.Tunnel(name=name, mode="wireguard", table=table,
                  source=str(st.net_toml_path(base_dir)))  # fmt: skip
    st.check_keys(t, KEYS)
    public, ports, netns = st.common(t)
    key_file = st.secret_path(t, "private_key_file", base_dir)
    if key_file is None:
        raise NetConfigError(f"{t.where('private_key_file')}: required (the path of a "
                             "`wg genkey` file)", hint=st.HINT)  # fmt: skip
    address = tuple(_checked(t, "address", a, interface=True) for a in st.strings(t, "address"))
    peers = table.get("peers", [])
    if not isinstance(peers, list) or len(peers) > MOST_PEERS:
        raise NetConfigError(f"{t.where('peers')}: needs [[tunnels.{name}.peers]] tables "
                             f"(at most {MOST_PEERS})", hint=st.HINT)  # fmt: skip
    return WgSettings(
        name=name, interface=st.text(t, "interface", _IFACE, f"wg-{name}"[:15]) or "",
        private_key_file=key_file, address=address,
        listen_port=st.whole(t, "listen_port", 1, 65535), mtu=st.whole(t, "mtu", 1280, 9000),
        userspace=st.text(t, "userspace", _USERSPACE, "auto") or "auto", netns=netns,
        public=public, allowed_ports=ports,
        peers=tuple(_peer(t, i, p, base_dir) for i, p in enumerate(peers)),
    )  # fmt: skip


def _peer(t: st.Tunnel, i: int, table: object, base_dir: Path) -> WgPeer:
    where = t.where(f"peers[{i}]")
    if not isinstance(table, dict):
        raise NetConfigError(f"{where}: needs a table", hint=st.HINT)
    unknown = sorted(set(table) - PEER_KEYS)
    if unknown:
        raise NetConfigError(f"{where}: key {unknown[0]}: not a peer key (keys: "
                             f"{', '.join(sorted(PEER_KEYS))})", hint=st.HINT)  # fmt: skip
    key = table.get("public_key")
    if not isinstance(key, str) or not is_public_key(key):
        raise NetConfigError(f"{where}: public_key: needs a WireGuard public key (44 "
                             "characters of base64)", hint=st.HINT)  # fmt: skip
    endpoint = table.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not _HOST.fullmatch(endpoint)
                                 or not 1 <= int(endpoint.rsplit(":", 1)[1]) <= 65535):  # fmt: skip
        raise NetConfigError(f"{where}: endpoint: needs host:port", hint=st.HINT)
    keepalive = table.get("persistent_keepalive")
    if keepalive is not None and (isinstance(keepalive, bool) or not isinstance(keepalive, int)
                                  or not 1 <= keepalive <= 65535):  # fmt: skip
        raise NetConfigError(f"{where}: persistent_keepalive: needs 1-65535 seconds",
                             hint=st.HINT)  # fmt: skip
    ips = tuple(_checked(t, f"peers[{i}]: allowed_ips", a, interface=False)
                for a in st.strings(t, "allowed_ips", table))  # fmt: skip
    return WgPeer(public_key=key, endpoint=endpoint, allowed_ips=ips,
                  preshared_key_file=st.secret_path(t, "preshared_key_file", base_dir, table),
                  persistent_keepalive=keepalive)  # fmt: skip


def _checked(t: st.Tunnel, key: str, value: str, *, interface: bool) -> str:
    try:
        if interface:
            return str(ipaddress.ip_interface(value))
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        what = "an address with its prefix" if interface else "a network"
        raise NetConfigError(f"{t.where(key)}: {value[:60]!r} is not {what}",
                             hint=st.HINT) from None  # fmt: skip


def read_key(path: Path, what: str) -> bytes:
    """A WireGuard key file: base64 of 32 bytes (``wg genkey``/``wg genpsk`` output)."""
    raw = st.read_secret(path, what).strip()
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise NetConfigError(f"{what}: {path}: not a WireGuard key (base64 of 32 bytes)",
                             hint="make one with `wg genkey` (or `wg genpsk`)")  # fmt: skip
    return key


def public_key_of(private: bytes) -> str:
    """The interface's public key (X25519 of the private key), base64."""
    return base64.b64encode(bytes(PrivateKey(private).public_key)).decode()


def effective(s: WgSettings) -> dict[str, Any]:
    """The configuration as signed: every key file replaced by its key's digest (the
    private key also by its public key). Reads the key files."""
    private = read_key(s.private_key_file, "private_key_file")
    peers = []
    for p in s.peers:
        psk = read_key(p.preshared_key_file, "preshared_key_file") if p.preshared_key_file else None
        peers.append({"public_key": p.public_key, "endpoint": p.endpoint,
                      "allowed_ips": list(p.allowed_ips), "keepalive": p.persistent_keepalive,
                      "preshared_key_sha256": st.digest(psk) if psk else None})  # fmt: skip
    return {"mode": "wireguard", "interface": s.interface, "address": list(s.address),
            "listen_port": s.listen_port, "mtu": s.mtu, "netns": s.netns,
            "userspace": s.userspace, "public": s.public, "allowed_ports": list(s.allowed_ports),
            "public_key": public_key_of(private), "private_key_sha256": st.digest(private),
            "peers": peers}  # fmt: skip


def render(s: WgSettings) -> str:
    """The wg-quick file (holds the private key). Reads the key files."""
    private = read_key(s.private_key_file, "private_key_file")
    lines = _section("Interface", [
        ("PrivateKey", base64.b64encode(private).decode()), ("ListenPort", s.listen_port),
        ("Address", ", ".join(s.address) or None), ("MTU", s.mtu)])  # fmt: skip
    for p in s.peers:
        psk = read_key(p.preshared_key_file, "preshared_key_file") if p.preshared_key_file else None
        lines += ["", *_section("Peer", [
            ("PublicKey", p.public_key), ("PresharedKey", psk and base64.b64encode(psk).decode()),
            ("Endpoint", p.endpoint), ("AllowedIPs", ", ".join(p.allowed_ips) or None),
            ("PersistentKeepalive", p.persistent_keepalive)])]  # fmt: skip
    return "\n".join(lines) + "\n"


def _section(title: str, pairs: list[tuple[str, object]]) -> list[str]:
    """``[title]`` and a ``Key = value`` line per value that is set."""
    return [f"[{title}]", *(f"{k} = {v}" for k, v in pairs if v is not None)]
