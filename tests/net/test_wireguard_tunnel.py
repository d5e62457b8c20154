"""A real WireGuard tunnel through wireguard-go between two namespaces: configured from
kei's settings, traffic across it, counters that move, no key in anything kei returns."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from wg_helpers import facing_tables

from kei.adapters.net.wireguard import WireGuardMode, build_wireguard
from netns import NetnsPair, need_tools

pytestmark = pytest.mark.slow


def _keys(home: Path) -> list[str]:
    return [p.read_text().strip() for p in (home / "keys").iterdir()]


def _peers_when(mode: WireGuardMode, seen: int) -> int:
    for _ in range(50):
        found = mode.peers()
        if found and (found[0].rx_bytes + found[0].tx_bytes) > seen:
            return found[0].rx_bytes + found[0].tx_bytes
        time.sleep(0.1)
    raise AssertionError("counters did not move")


def test_two_namespaces_talk_through_wireguard_go(netns_pair: NetnsPair, tmp_path: Path) -> None:
    need_tools("wg", "wg-quick", "wireguard-go", "ping")
    ta, tb = facing_tables(netns_pair, tmp_path)
    a, b = build_wireguard("a", ta, tmp_path), build_wireguard("b", tb, tmp_path)
    try:
        up_a, up_b = a.configure(), b.configure()
        assert up_a.ok, up_a.stderr_tail
        assert up_b.ok, up_b.stderr_tail
        assert up_a.backend_version and "wireguard-go" in up_a.backend_version
        assert stat.S_IMODE(a.conf_path.stat().st_mode) == 0o600
        assert netns_pair.ping(netns_pair.a, "10.99.0.2")
        before = _peers_when(a, 0)
        assert netns_pair.ping(netns_pair.a, "10.99.0.2", count=5)
        assert _peers_when(a, before) > before
        (peer,) = a.peers()
        assert peer.endpoint == f"{netns_pair.b_addr}:51820"
        assert peer.addresses == ("10.99.0.0/24",)
        assert peer.last_seen_us is not None and peer.last_seen_us > 0
        secrets = _keys(tmp_path)
        shown = repr(a.peers()) + repr(up_a) + a.config_sha256()
        assert not any(s in shown for s in secrets)
        b.conf_path.unlink()  # removed by hand: taken down without it
    finally:
        down_a, down_b = a.teardown(), b.teardown()
    assert down_a.ok and down_b.ok and not b.exists()
    assert not a.conf_path.exists() and not a.exists()
    assert a.teardown().ok  # down already: still ok
