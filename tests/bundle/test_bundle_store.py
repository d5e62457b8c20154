"""``insert_stored``: the stores' verbatim insert that replay uses, on both stores.

Rows land at their own positions with their own bytes, in one transaction, only
when the chain still ends where the caller says; afterwards the store verifies and
appends carry on after them (on PostgreSQL the id sequence has moved past them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bundle_helpers import rows_of, store_url_of
from cli_helpers import run_sql
from kei import Ledger, NewEvent
from kei.adapters.store import open_store
from kei.adapters.store.base import ChainEntry
from kei.app.ledger.heads_io import heads_from
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.errors import ConcurrencyError, StoreError


def _fill(ledger: Ledger, n: int) -> None:
    ledger.append(
        [
            NewEvent(f"agent/a{i % 3}", events.AgentFailed(agent_id=f"a{i % 3}", reason=f"r{i}"))
            for i in range(n)
        ]
    )


@pytest.mark.parametrize("target_kind", ["sqlite", "postgres"])
def test_rows_land_verbatim_and_appends_continue_after_them(
    ledger: Ledger,
    target_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_ledger: Callable[..., Ledger],
) -> None:
    _fill(ledger, 25)
    source = rows_of(ledger.store)
    url = store_url_of(target_kind, request, tmp_path, "target")
    target = open_store(url, create=True)
    try:
        pages = [source[:10], source[10:]]
        heads = heads_from(ledger.store, 0)  # copied with the rows, as replay does
        assert target.insert_stored(pages, head=None, create=True, heads=heads) == len(source)
        assert rows_of(target) == source
        assert verify_store(target).ok
    finally:
        target.close()
    moved = make_ledger(url)
    appended = moved.append([NewEvent("agent/z", events.AgentMerged(agent_id="z"))])
    assert appended[0].position > source[-1][0]
    assert appended[0].seq == len(source)
    assert verify_store(moved.store).ok


def test_a_second_insert_extends_from_the_head(ledger: Ledger, tmp_path: Path) -> None:
    _fill(ledger, 12)
    source = rows_of(ledger.store)
    target = open_store(f"sqlite:///{tmp_path / 't.db'}", create=True)
    try:
        target.insert_stored([source[:5]], head=None, create=True)
        head = target.chain_at(4)
        assert head is not None
        assert target.insert_stored([source[5:]], head=head) == len(source) - 5
        assert rows_of(target) == source
    finally:
        target.close()


def test_a_moved_head_is_refused_and_nothing_is_written(ledger: Ledger) -> None:
    _fill(ledger, 4)
    before = rows_of(ledger.store)
    stale = ChainEntry(1, 0, b"\0" * 32, b"\1" * 32)
    with pytest.raises(ConcurrencyError, match="no longer ends at position 1"):
        ledger.store.insert_stored([[(99, b"s", 1, b"t", b"x", 5, b"\0" * 32, b"\0" * 32)]],
                                   head=stale)  # fmt: skip
    with pytest.raises(ConcurrencyError, match="no longer empty"):
        ledger.store.insert_stored([], head=None)
    assert rows_of(ledger.store) == before


def test_a_failure_in_a_later_page_rolls_back_every_page(
    ledger: Ledger, store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _fill(ledger, 8)
    source = rows_of(ledger.store)
    kind = "sqlite" if store_url.startswith("sqlite") else "postgres"
    url = store_url_of(kind, request, tmp_path, "other")
    target = open_store(url, create=True)
    try:
        clash = [source[3]]  # the same position twice: the second page fails
        with pytest.raises(StoreError, match="refused the replayed events"):
            target.insert_stored([source[:5], clash], head=None, create=True)
        assert not target.is_created() or target.count() == 0
    finally:
        target.close()


@pytest.mark.parametrize("split", [[1], [199], [249, 1], [200, 300], [498, 2]])
def test_pages_of_any_size_land_whole(ledger: Ledger, tmp_path: Path, split: list[int]) -> None:
    """SQLite inserts many rows to a statement (199 event rows, 249 chain rows) and the
    rest one by one: every cut of the pages gives the same rows."""
    _fill(ledger, 499)  # 500 events with the genesis
    source = rows_of(ledger.store)
    pages, at = [], 0
    for n in [*split, len(source)]:
        pages.append(source[at : at + n])
        at += n
    target = open_store(f"sqlite:///{tmp_path / 't.db'}", create=True)
    try:
        heads = heads_from(ledger.store, 0)
        assert target.insert_stored(pages, head=None, create=True, heads=heads) == len(source)
        assert rows_of(target) == source
        assert verify_store(target).ok
    finally:
        target.close()


def test_a_clash_inside_a_many_row_statement_writes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    _fill(ledger, 299)
    source = rows_of(ledger.store)
    target = open_store(f"sqlite:///{tmp_path / 't.db'}", create=True)
    try:
        with pytest.raises(StoreError, match="refused the replayed events"):
            target.insert_stored([source[:100] + source[99:]], head=None, create=True)
        assert not target.is_created() or target.count() == 0
    finally:
        target.close()


def _scanned(url: str, seq: int) -> ChainEntry | None:
    """The chain row of ``seq`` at the lowest position, read by a scan (no index)."""
    rows = run_sql(
        url,
        "SELECT position, seq, prev_hash, hash FROM kei_chain WHERE seq = ? "
        "ORDER BY position LIMIT 1",
        (seq,),
    )
    if not rows:
        return None
    position, found, prev_hash, digest = rows[0]
    return ChainEntry(int(position), int(found), bytes(prev_hash), bytes(digest))


def test_chain_at_finds_a_sequence_at_its_position_or_anywhere_else(
    ledger: Ledger, store_url: str
) -> None:
    """Position seq + 1 is probed first (where kei's appends put entry seq); rows
    elsewhere (PostgreSQL's gaps, moved rows) are still found, by the scan."""
    _fill(ledger, 12)
    seqs = range(-1, 16)
    assert [ledger.store.chain_at(s) for s in seqs] == [_scanned(store_url, s) for s in seqs]
    assert ledger.store.chain_at(2**63 - 1) is None
    run_sql(store_url, "UPDATE kei_chain SET position = position + 1000")  # every probe misses
    assert [ledger.store.chain_at(s) for s in seqs] == [_scanned(store_url, s) for s in seqs]
    assert ledger.store.chain_at(4) is not None


def test_chain_at_of_a_sequence_held_twice_prefers_position_seq_plus_1(
    ledger: Ledger, store_url: str
) -> None:
    """A tampered log: seq 5 also at position 3. The probe's row is an entry of that
    sequence, and it is the one returned (verify-chain looks for the earliest itself)."""
    _fill(ledger, 12)
    run_sql(store_url, "UPDATE kei_chain SET seq = 5 WHERE position = 3")
    entry = ledger.store.chain_at(5)
    assert entry is not None and (entry.position, entry.seq) == (6, 5)
    lowest = _scanned(store_url, 5)
    assert lowest is not None and lowest.position == 3
