"""A real IPsec tunnel with a pre-shared key between two strongSwan daemons, each in its
own network and mount namespace, both driven by kei's IPsec mode through VICI.

The kernel here has no ESP, so each charon uses ``kernel-libipsec`` (ESP in userspace
through a TUN device) with UDP encapsulation forced (``encap = true``). The traffic
selectors' addresses sit on each namespace's loopback, so a ping between them must
cross the tunnel.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kei.adapters.net.ipsec import IpsecMode, build_ipsec
from kei.errors import NetError
from netns import NetnsPair, need_tools
from vpn_ns import start_charon, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def charons(netns_pair: NetnsPair, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A charon in each namespace; their VICI sockets."""
    need_tools("ping", "swanctl")
    started: list[subprocess.Popen[bytes]] = []
    try:
        vici_a, proc = start_charon(netns_pair.a, tmp_path / "charon-a")
        started.append(proc)
        vici_b, proc = start_charon(netns_pair.b, tmp_path / "charon-b")
        started.append(proc)
        netns_pair.run(netns_pair.a, "ip", "addr", "add", "10.99.1.1/32", "dev", "lo")
        netns_pair.run(netns_pair.b, "ip", "addr", "add", "10.99.2.1/32", "dev", "lo")
        yield vici_a, vici_b
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(timeout=10)


def _tunnel(pair: NetnsPair, tmp_path: Path, vici: Path, side: str) -> IpsecMode:
    here, there = ("a", "b") if side == "a" else ("b", "a")
    table: dict[str, object] = {
        "mode": "ipsec", "vici_socket": str(vici), "psk_file": "psk",
        "local_addrs": [pair.a_addr if side == "a" else pair.b_addr],
        "local_id": f"{here}.kei.test", "remote_id": f"{there}.kei.test",
        "local_ts": [f"10.99.{1 if side == 'a' else 2}.0/24"],
        "remote_ts": [f"10.99.{2 if side == 'a' else 1}.0/24"],
        "encap": True, "timeout": 20,
    }  # fmt: skip
    if side == "a":  # the initiator; b answers anyone who knows the key
        table["remote_addrs"] = [pair.b_addr]
    return build_ipsec("hq", table, tmp_path)


def _swanctl_bytes(pair: NetnsPair, vici: Path) -> tuple[int, int]:
    """The byte counts ``swanctl --list-sas`` prints (text) for kei-hq, summed: the
    cross-check of what kei read through VICI. (swanctl prints ``in SPI, N bytes, …``
    lines; the ``bytes_i`` upstream's text parser looked for is not among them.)"""
    done = pair.run(pair.a, "swanctl", "--list-sas", "--ike", "kei-hq", "--uri", f"unix://{vici}")
    assert "bytes_i" not in done.stdout
    found = {"in": 0, "out": 0}
    for match in re.finditer(r"^\s+(in|out)\s+\S+.*?,\s+(\d+) bytes,", done.stdout, re.M):
        found[match.group(1)] += int(match.group(2))
    return found["in"], found["out"]


def test_ipsec_psk_tunnel_through_vici(
    netns_pair: NetnsPair, tmp_path: Path, charons: tuple[Path, Path]
) -> None:
    psk = tmp_path / "psk"
    psk.write_text("kei-test-psk-0123456789abcdef\n")
    psk.chmod(0o600)
    a = _tunnel(netns_pair, tmp_path, charons[0], "a")
    b = _tunnel(netns_pair, tmp_path, charons[1], "b")
    assert not b.settings.initiate and a.settings.initiate

    responder = b.configure()
    assert responder.ok, responder.stderr_tail
    assert b.peers() == []
    up = a.configure()
    assert up.ok, up.stderr_tail
    assert up.backend_version and up.backend_version.startswith("strongSwan 5.")

    (before,) = a.peers()
    assert before.peer_id == "b.kei.test"
    assert before.endpoint == f"{netns_pair.b_addr}:4500"
    assert before.addresses == ("10.99.2.0/24",)
    assert before.last_seen_us is not None
    done = netns_pair.run(netns_pair.a, "ping", "-c", "4", "-i", "0.2", "-W", "2",
                          "-I", "10.99.1.1", "10.99.2.1", check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (after,) = a.peers()
    assert after.rx_bytes >= before.rx_bytes + 4 * 84 and after.tx_bytes >= before.tx_bytes + 4 * 84
    assert after.last_seen_us is not None and after.last_seen_us >= before.last_seen_us
    (seen_by_b,) = b.peers()
    assert seen_by_b.peer_id == "a.kei.test" and seen_by_b.rx_bytes == after.tx_bytes
    assert _swanctl_bytes(netns_pair, charons[0]) == (after.rx_bytes, after.tx_bytes)

    assert a.configure().ok  # established already: nothing new initiated
    assert len(a.peers()) == 1

    down = a.teardown()
    assert down.ok, down.stderr_tail
    assert a.peers() == []
    wait_for(lambda: b.peers() == [], 20, "the responder to see the SA deleted")
    assert a.teardown().ok  # already down

    digest = a.config_sha256()
    psk.write_text("a-different-key-that-b-does-not-know\n")
    assert a.config_sha256() != digest
    refused = a.configure()
    assert not refused.ok and "initiate" in refused.stderr_tail
    assert "a-different-key" not in refused.stderr_tail
    assert b.teardown().ok and a.teardown().ok


def test_ipsec_without_charon_is_a_net_error(tmp_path: Path) -> None:
    (tmp_path / "psk").write_text("kei-test-psk-0123456789abcdef")
    (tmp_path / "psk").chmod(0o600)
    mode = build_ipsec(
        "hq",
        {"mode": "ipsec", "vici_socket": "absent.vici", "psk_file": "psk", "local_id": "a",
         "remote_id": "b", "local_ts": ["10.1.0.0/24"], "remote_ts": ["10.2.0.0/24"]},
        tmp_path,
    )  # fmt: skip
    with pytest.raises(NetError, match="cannot connect to strongSwan's VICI socket"):
        mode.peers()
    result = mode.configure()
    assert not result.ok and "VICI socket" in result.stderr_tail and result.exit_code is None
    assert mode.teardown().ok  # no charon holds no SA: down already
