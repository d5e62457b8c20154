"""WireGuard set-ups for the tests: keys made with ``wg``, two tunnels facing each other
across a ``netns_pair``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from netns import NetnsPair


def wg_key(path: Path) -> str:
    """Write a fresh private key to ``path`` (0600); return its public key."""
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, private.encode())
    os.close(fd)
    return subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def facing_tables(pair: NetnsPair, home: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two ``[tunnels.*]`` tables: one in namespace a (10.99.0.1), one in b (10.99.0.2),
    each the other's peer over the veth addresses."""
    keys = home / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    pub_a, pub_b = wg_key(keys / "a.key"), wg_key(keys / "b.key")
    psk = subprocess.run(["wg", "genpsk"], capture_output=True, text=True, check=True).stdout
    fd = os.open(keys / "psk", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, psk.encode())
    os.close(fd)

    def table(me: str, ns: str, address: str, peer_key: str, peer_addr: str) -> dict[str, Any]:
        return {
            "mode": "wireguard", "netns": ns, "interface": f"kw{pair.token}{me}",
            "private_key_file": f"keys/{me}.key", "address": [f"{address}/24"],
            "listen_port": 51820, "userspace": "wireguard-go", "allowed_ports": [51820],
            "peers": [{"public_key": peer_key, "endpoint": f"{peer_addr}:51820",
                       "allowed_ips": [f"{address.rsplit('.', 1)[0]}.0/24"],
                       "preshared_key_file": "keys/psk", "persistent_keepalive": 1}],
        }  # fmt: skip

    return (table("a", pair.a, "10.99.0.1", pub_b, pair.b_addr),
            table("b", pair.b, "10.99.0.2", pub_a, pair.a_addr))  # fmt: skip
