"""The log's one follower: what it hands over, where it stops, and what it says there.

Breaks are made by rewriting a stored byte behind kei's back. Every reader that
trusts what it reads (read models, the Redis mirror, tail, exports) goes through
``LogFollower``; these tests pin its contract on both stores.
"""

from __future__ import annotations

import pytest

from cli_helpers import run_sql
from kei.adapters.store.base import PAGE
from kei.adapters.store.follow import LogFollower, link_of
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain import events as ev
from kei.errors import VerificationError


def skills(n: int, prefix: str = "s") -> list[NewEvent]:
    return [NewEvent(f"skill/{prefix}{i}", ev.SkillInvoked(skill_name=f"{prefix}{i}", success=True))
            for i in range(n)]  # fmt: skip


def test_a_clean_log_is_handed_over_whole_in_pages(ledger: Ledger) -> None:
    ledger.append(skills(12))
    follower = ledger.follow()
    pages = list(follower.pages(5))
    assert [len(p) for p in pages] == [5, 5, 3]  # the genesis and 12 events
    assert follower.broken is None and follower.fetched == 0
    last = pages[-1][-1]
    assert follower.link == link_of(last) and follower.position == last.position


def test_following_from_a_link_reads_only_what_came_after(ledger: Ledger) -> None:
    first = ledger.append(skills(3))[-1]
    ledger.append(skills(2, "later"))
    after = next(r for r in ledger.store.read(after=first.position - 1, limit=1))
    records = [r for page in ledger.follow(link_of(after)).pages() for r in page]
    assert [r.stream for r in records] == ["skill/later0", "skill/later1"]


def test_upto_bounds_every_read(ledger: Ledger) -> None:
    appended = ledger.append(skills(6))
    upto = appended[2].position
    records = [r for page in ledger.follow(upto=upto).pages() for r in page]
    assert records[-1].position == upto


def test_it_stops_at_a_changed_byte_and_hands_over_only_what_came_before(
    ledger: Ledger, store_url: str
) -> None:
    appended = ledger.append(skills(6))
    bad = appended[3].position
    run_sql(store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (b"\x07" * 32, bad))
    follower = ledger.follow()
    handed = [r.position for page in follower.pages() for r in page]
    assert handed[-1] == appended[2].position  # nothing at or after the break
    assert follower.broken is not None and follower.broken.record.position == bad
    assert [f.kind.value for f in follower.broken.findings] == ["content-changed"]
    assert follower.read() == []  # stays stopped
    error = follower.error("my export", "; see verify-chain")
    assert isinstance(error, VerificationError)
    assert str(error).startswith(f"my export stopped at position {bad}: content-changed: ")
    assert str(error).endswith("; see verify-chain")


def test_going_past_a_break_checks_the_next_event_against_the_broken_one(
    ledger: Ledger, store_url: str
) -> None:
    appended = ledger.append(skills(4))
    bad = appended[1].position
    run_sql(store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (b"\x07" * 32, bad))
    follower = ledger.follow()
    list(follower.pages())
    assert follower.go_past().position == bad
    # The next event links to the real hash, not the rewritten one: a second break.
    assert follower.read() == []
    assert follower.broken is not None and follower.broken.record.position == appended[2].position
    assert follower.broken.first.kind.value == "chain-broken"
    follower.go_past()
    assert [r.position for r in follower.read()] == [appended[3].position]


def test_going_past_without_a_break_is_a_programming_error(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="not at a break"):
        ledger.follow().go_past()


def test_scan_hands_over_every_raw_row_and_keeps_the_findings(
    ledger: Ledger, store_url: str
) -> None:
    appended = ledger.append(skills(PAGE + 5))
    bad = appended[7].position
    run_sql(store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (b"\x07" * 32, bad))
    head = ledger.store.max_position()
    follower = LogFollower(ledger.store, None, position=0, upto=head)
    rows = [row for window in iter(follower.scan, []) for row in window]
    assert len(rows) == head and bytes(rows[0][1]) == b"kei.keys"  # raw bytes, as stored
    kinds = [(f.position, f.kind.value) for f in follower.scanned.findings]
    assert (bad, "content-changed") in kinds
    assert (bad + 1, "chain-broken") in kinds


def test_the_ledger_url_is_the_one_it_was_opened_with(ledger: Ledger, store_url: str) -> None:
    assert ledger.url.redacted == ledger.store.url  # parsed once; messages show no password
    assert ledger.url.text == store_url
    assert Ledger(ledger.store).url.text == ledger.store.url  # built on a store: the store's own
