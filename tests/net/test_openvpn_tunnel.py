"""A real OpenVPN server (namespace a) and client (namespace b), both started by kei's
OpenVPN mode, observed through the management socket.

Includes the regression test for upstream's hang: OpenVPN ends a ``status`` reply with
``END\\r\\n``; a reader waiting for ``\\nEND\\n`` (upstream's) never sees it and times out
on the very bytes kei's reader returns from.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from kei.adapters.net.openvpn import OpenVpnMode, build_openvpn
from kei.adapters.net.openvpn_mgmt import ManagementClient
from kei.errors import NetError
from netns import NetnsPair, need_tools
from vpn_ns import Pki, make_pki, wait_for

pytestmark = pytest.mark.slow


def _modes(
    pair: NetnsPair, tmp_path: Path, pki: Pki, port: int = 11940, proto: str = "udp"
) -> tuple[OpenVpnMode, OpenVpnMode]:
    server = build_openvpn(
        "office",
        {"mode": "openvpn", "role": "server", "subnet": "10.8.31.0/24", "port": port,
         "proto": proto,
         "local": pair.a_addr, "device": f"tun{pair.token[:6]}", "netns": pair.a,
         "ca_file": str(pki.ca), "cert_file": str(pki.server_cert),
         "key_file": str(pki.server_key), "launch": "direct"},
        tmp_path,
    )  # fmt: skip
    client = build_openvpn(
        "home",
        {"mode": "openvpn", "role": "client", "remote": pair.a_addr, "port": port,
         "proto": proto,
         "server_name": "server", "ca_file": str(pki.ca), "cert_file": str(pki.client_cert),
         "key_file": str(pki.client_key), "netns": pair.b, "launch": "direct"},
        tmp_path,
    )  # fmt: skip
    return server, client


def _upstream_read(path: Path, timeout: float) -> tuple[bytes, bool]:
    """Upstream's reader: send ``status 2``, read until ``\\nEND\\n`` or EOF (1 MiB cap).
    Returns the bytes read and whether it stopped only because of the timeout."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.settimeout(timeout)
        sock.sendall(b"status 2\r\n")
        data = b""
        try:
            while b"\nEND\n" not in data and len(data) < 1 << 20:
                chunk = sock.recv(4096)
                if not chunk:
                    return data, False
                data += chunk
        except TimeoutError:
            return data, True
        return data, False


def test_openvpn_server_and_client_through_kei(netns_pair: NetnsPair, tmp_path: Path) -> None:
    need_tools("openvpn", "openssl", "ping")
    pki = make_pki(tmp_path / "pki")
    server, client = _modes(netns_pair, tmp_path, pki)

    up = server.configure()
    assert up.ok, up.stderr_tail
    assert up.backend_version and up.backend_version.startswith("OpenVPN 2.")
    assert len(up.backend_version.split()) == 2  # the version, not the build flags
    assert server.configure().ok  # already running with this configuration: no restart
    assert client.configure().ok, client.configure().stderr_tail

    wait_for(lambda: [p.peer_id for p in server.peers()] == ["alice"], 60, "alice on the server")
    wait_for(lambda: client.peers() != [], 30, "the client connected")
    before = server.peers()[0]
    assert before.endpoint is not None and before.endpoint.startswith(netns_pair.b_addr + ":")
    assert "10.8.31.2" in before.addresses

    assert netns_pair.ping(netns_pair.b, "10.8.31.1", count=5)
    # Last Ref is per second; wait until the route has been used after the first look.
    time.sleep(1.1)
    assert netns_pair.ping(netns_pair.b, "10.8.31.1", count=2)
    after = server.peers()[0]
    assert after.rx_bytes > before.rx_bytes and after.tx_bytes > before.tx_bytes
    assert after.last_seen_us is not None and after.last_seen_us >= (before.last_seen_us or 0)
    assert after.last_seen_us <= time.time() * 1_000_000 + 1_000_000
    (seen_by_client,) = client.peers()
    assert seen_by_client.peer_id == "server"
    assert seen_by_client.endpoint == f"{netns_pair.a_addr}:11940"
    assert seen_by_client.addresses == ("10.8.31.2",)
    assert seen_by_client.rx_bytes > 0 and seen_by_client.tx_bytes > 0

    # The upstream hang, shown on the real server: \nEND\n never comes, END\r\n does.
    data, timed_out = _upstream_read(server.settings.management_socket, timeout=2.0)
    assert timed_out and b"\r\nEND\r\n" in data and b"\nEND\n" not in data
    with ManagementClient(server.settings.management_socket, timeout=5) as mgmt:
        rows = mgmt.status()
        assert rows[-1].startswith("GLOBAL_STATS") and any("alice" in r for r in rows)
        assert mgmt.bytecount(1).startswith("bytecount interval changed")
        note = mgmt.wait_notification(">BYTECOUNT_CLI:", timeout=10)
        client_id, received, sent = note.split(":", 1)[1].split(",")
        assert int(received) > 0 and int(sent) > 0 and client_id.isdigit()
        assert mgmt.bytecount(0)
        with pytest.raises(NetError, match="refused 'kill'"):
            mgmt.kill("nobody")

    down = client.teardown()
    assert down.ok and client.running_pid() is None
    # explicit-exit-notify: the server forgets the client at once, not after keepalive's 60 s
    wait_for(lambda: server.peers() == [], 10, "alice gone from the server")
    assert client.configure().ok
    wait_for(lambda: [p.peer_id for p in server.peers()] == ["alice"], 30, "alice back")
    assert "1 client(s) killed" in server.kill("alice")
    assert server.peers() == []
    assert client.teardown().ok

    first = server.running_pid()
    moved, _ = _modes(netns_pair, tmp_path, pki, port=11941)
    assert moved.config_sha256() != server.config_sha256()
    assert moved.configure().ok  # a changed file: the old daemon stopped, a new one started
    assert moved.running_pid() not in (None, first)
    assert server.teardown().ok and server.running_pid() is None
    assert server.teardown().ok  # already down
    with pytest.raises(NetError, match="cannot connect"):
        server.peers()


def test_openvpn_over_tcp(netns_pair: NetnsPair, tmp_path: Path) -> None:
    need_tools("openvpn", "openssl", "ping")
    server, client = _modes(netns_pair, tmp_path, make_pki(tmp_path / "pki"), proto="tcp")
    assert server.configure().ok and client.configure().ok
    wait_for(lambda: [p.peer_id for p in server.peers()] == ["alice"], 60, "alice over TCP")
    assert netns_pair.ping(netns_pair.b, "10.8.31.1", count=2)
    (alice,) = server.peers()
    assert alice.endpoint is not None and alice.endpoint.startswith(netns_pair.b_addr + ":")
    assert client.teardown().ok and server.teardown().ok
