"""The namespace fixture itself: two namespaces that reach each other, removed after."""

from __future__ import annotations

import subprocess

from netns import NetnsPair, need_tools, netns_pair_made


def _namespaces() -> set[str]:
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_the_pair_reaches_across_the_veth(netns_pair: NetnsPair) -> None:
    need_tools("ping")
    assert netns_pair.ping(netns_pair.a, netns_pair.b_addr, count=1)
    assert netns_pair.ping(netns_pair.b, netns_pair.a_addr, count=1)


def test_the_pair_is_removed_with_its_processes() -> None:
    with netns_pair_made() as pair:
        assert {pair.a, pair.b} <= _namespaces()
        sleeper = subprocess.Popen(["ip", "netns", "exec", pair.a, "sleep", "600"])
    assert sleeper.wait(timeout=10) != 0  # killed by the cleanup
    assert not {pair.a, pair.b} & _namespaces()
