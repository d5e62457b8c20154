"""``verify-chain --quick`` takes steps 4-5 from step 2's own reads (``verify_pool.Handover``).

The report must be exactly the one of the passes that read the log again (the stream
versions along the index, the tree and the signed heads over the chain table), on a
clean log and on tampered ones, in one process and in worker processes: the same
findings in the same order, the same tree. Where the handover cannot stand for a pass
(a gap in the chain, a stream that does not count up, a stream id stored as a blob),
that pass runs, and says what it always said.

The pure parts are checked against what they replace: ``subtree_pieces`` against
``CompactRange.extend``, ``HeadChecker.feed_run`` against ``feed``, ``StreamEnds`` and
``VersionJoin`` against ``VersionChecker``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_verify_findings import flip, pos_col, set_state, swap

from cli_helpers import run_sql
from kei.app.ledger import tree_pass, verification
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.proving import prove_inclusion
from kei.app.ledger.verification import VerifyLimits, verify_store
from kei.domain import events
from kei.domain.log.checkpoint import parse_checkpoint
from kei.domain.log.envelope import KEY_ID_LEN, SIG_LEN
from kei.domain.log.findings import FindingKind
from kei.domain.log.heads import HeadChecker
from kei.domain.log.keyring import build_keyring
from kei.domain.log.merkle import CompactRange, subtree_pieces
from kei.domain.log.versions import StreamEnds, VersionChecker, VersionJoin

K = FindingKind
LIMITS = VerifyLimits(page=97, range_size=250, parallel_min=0)
"""Pages, ranges and tiles (256 leaves) that straddle one another."""


def append(ledger: Ledger, rng: random.Random, upto: int) -> None:
    """Transactions of 1 to 60 events over 7 streams until the log holds ``upto``."""
    n = ledger.store.count()
    while n < upto:
        size = rng.randint(1, 60)
        ledger.append(
            [
                NewEvent(f"s-{(n + i) % 7}", events.AgentMerged(agent_id=f"a-{(n + i) % 7}"))
                for i in range(size)
            ]
        )
        n += size


@pytest.fixture
def grown(ledger: Ledger) -> tuple[Ledger, str]:
    """~700 events, a tree checkpoint of the first ~300 (a size inside a tile), and the
    stored subtree hashes of the first two tiles filled (as a proof fills them)."""
    rng = random.Random(14)
    append(ledger, rng, 300)
    early = ledger.checkpoint()
    append(ledger, rng, 700)
    prove_inclusion(ledger.store, ledger.ledger_id, 2, parse_checkpoint(ledger.checkpoint()))
    return ledger, early


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each re-reading pass ran (in this process)."""
    calls = {"versions": 0, "tree": 0}
    versions, tree = tree_pass.version_gaps, tree_pass.recompute_tree

    def count_versions(*args: Any) -> Any:
        calls["versions"] += 1
        return versions(*args)

    def count_tree(*args: Any) -> Any:
        calls["tree"] += 1
        return tree(*args)

    for module in (verification, tree_pass):  # both call them
        monkeypatch.setattr(module, "version_gaps", count_versions)
        monkeypatch.setattr(module, "recompute_tree", count_tree)
    return calls


def report(ledger: Ledger, url: str, text: str, jobs: int) -> dict[str, Any]:
    r = verify_store(
        ledger.store, quick=True, jobs=jobs, checkpoint_text=text, limits=LIMITS, url=url
    )
    return {**r.to_dict(), "tree_hashes": r.tree_hashes}


def reread(ledger: Ledger, url: str, text: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The report of the passes that read the log again: nothing is handed over."""
    add = tree_pass.Handed.add
    with monkeypatch.context() as m:
        m.setattr(tree_pass.Handed, "add", lambda self, handover: add(self, None))
        return report(ledger, url, text, 1)


def positions(url: str) -> list[int]:
    col = pos_col(url)
    return [int(r[0]) for r in run_sql(url, f"SELECT {col} FROM kei_events ORDER BY {col}")]


def _nothing(url: str) -> None:
    return None


def _stored_node(url: str) -> None:
    run_sql(url, "UPDATE kei_merkle_nodes SET hash = ? WHERE level = 8 AND idx = 1", (bytes(32),))


def _chain_hash(url: str) -> None:
    at = positions(url)[100]
    run_sql(url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (bytes(32), at))


def _payload(url: str) -> None:
    at = positions(url)[123]
    state = run_sql(url, f"SELECT state FROM kei_events WHERE {pos_col(url)} = ?", (at,))[0][0]
    set_state(url, at, flip(bytes(state), -1))


def _head_deleted(url: str) -> None:
    run_sql(url, "DELETE FROM kei_heads WHERE position = 5")


def _head_moved(url: str) -> None:
    run_sql(url, "UPDATE kei_heads SET seq = seq + 1 WHERE position = 7")


def _head_tail_deleted(url: str) -> None:
    last = run_sql(url, "SELECT max(position) FROM kei_heads")[0][0]
    run_sql(url, "DELETE FROM kei_heads WHERE position >= ?", (int(last) - 2,))


def _heads_dropped(url: str) -> None:
    run_sql(url, "DROP TABLE kei_heads")


def _chain_row_deleted(url: str) -> None:
    run_sql(url, "DELETE FROM kei_chain WHERE position = ?", (positions(url)[400],))


def _event_deleted(url: str) -> None:
    run_sql(url, f"DELETE FROM kei_events WHERE {pos_col(url)} = ?", (positions(url)[260],))


def _swapped(url: str) -> None:
    at = positions(url)
    swap(url, at[249], at[250])


def _version_changed(url: str) -> None:
    run_sql(url, f"UPDATE kei_events SET originator_version = 9999 WHERE {pos_col(url)} = ?", (positions(url)[500],))  # fmt: skip


def _blob_stream(url: str) -> None:
    """The same bytes as a blob: every hash still holds, only the index pass sees it
    (SQLite sorts blobs after all text: the stream is cut in two)."""
    if not url.startswith("sqlite"):
        pytest.skip("only SQLite lets a text column hold a blob")
    run_sql(
        url,
        "UPDATE kei_events SET originator_id = CAST(originator_id AS BLOB) WHERE rowid = ?",
        (positions(url)[600],),
    )


CASES: list[tuple[Callable[[str], None], bool, bool]] = [
    # (tamper, the tree pass is handed over, the versions pass is handed over)
    (_nothing, True, True),
    (_stored_node, True, True),
    (_chain_hash, True, True),
    (_payload, True, True),
    (_head_deleted, True, True),
    (_head_moved, True, True),
    (_head_tail_deleted, True, True),
    (_heads_dropped, True, True),
    (_chain_row_deleted, False, True),
    (_event_deleted, False, False),
    (_swapped, False, True),
    (_version_changed, True, False),
    (_blob_stream, True, False),
]


@pytest.mark.parametrize(("tamper", "tree_handed", "versions_handed"), CASES)
def test_quick_reports_what_the_passes_that_reread_report(
    grown: tuple[Ledger, str],
    store_url: str,
    passes: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    tamper: Callable[[str], None],
    tree_handed: bool,
    versions_handed: bool,
) -> None:
    ledger, text = grown
    tamper(store_url)
    want = reread(ledger, store_url, text, monkeypatch)
    passes.update(versions=0, tree=0)
    for jobs in (1, 2):
        assert report(ledger, store_url, text, jobs) == want, jobs
    assert passes == {
        "versions": 0 if versions_handed else 2,
        "tree": 0 if tree_handed else 2,
    }
    assert bool(want["findings"]) == (tamper is not _nothing)
    assert want["tree_size"] > 700 and want["checkpoint"]["size"] % 256


# -- the pure parts ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 2000),
    n=st.integers(0, 1500),
    cut=st.none() | st.integers(0, 4000),
    seed=st.integers(0, 2**32),
)
def test_pieces_append_what_extend_appends(start: int, n: int, cut: int | None, seed: int) -> None:
    rng = random.Random(seed)
    before = [rng.randbytes(32) for _ in range(start)]
    hashes = [rng.randbytes(32) for _ in range(n)]
    heard: dict[str, list[tuple[int, int, bytes]]] = {"extend": [], "pieces": []}
    by_extend = CompactRange(on_tile=lambda *node: heard["extend"].append(node))
    by_pieces = CompactRange(on_tile=lambda *node: heard["pieces"].append(node))
    by_extend.extend(before)
    by_pieces.extend(before)
    by_extend.extend(hashes)
    pieces = subtree_pieces(start, hashes, cut)
    sizes = []
    for piece in pieces:
        by_pieces.add_pieces((piece,))
        sizes.append(by_pieces.size)
    assert (by_pieces.size, by_pieces.hashes) == (by_extend.size, by_extend.hashes)
    assert heard["pieces"] == heard["extend"]
    if cut is not None and start < cut <= start + n:
        assert cut in sizes  # no piece straddles the cut
    assert {level for level, _ in pieces} <= {0, 8}


def test_a_subtree_that_does_not_fit_is_refused() -> None:
    tree = CompactRange()
    tree.extend([bytes(32)] * 3)
    with pytest.raises(ValueError, match="cannot start at leaf 3"):
        tree.add_subtree(8, bytes(32))


HEAD = st.tuples(
    st.integers(0, 12),  # counter
    st.integers(0, 40),  # first sequence
    st.integers(0, 40),  # last sequence
)


@settings(max_examples=200, deadline=None)
@given(
    heads=st.lists(HEAD, max_size=10),
    runs=st.lists(st.integers(0, 15), max_size=6),
    loads=st.lists(st.integers(0, 10), max_size=6),
)
def test_feed_run_finds_what_feed_finds(
    heads: list[tuple[int, int, int]], runs: list[int], loads: list[int]
) -> None:
    """Any head rows (gaps, overlaps, out of order), loaded between runs of rows."""
    rows = [(p, f, s, b"k" * KEY_ID_LEN, b"s" * SIG_LEN) for p, f, s in heads]
    ring = build_keyring([])
    by_row, by_run = (HeadChecker(ring, "L", quick=True) for _ in range(2))
    seq, pending = 0, list(rows)
    for i, count in enumerate(runs):
        take = loads[i] if i < len(loads) else 0
        batch, pending = pending[:take], pending[take:]
        by_row.add_heads(batch)
        by_run.add_heads(batch)
        chain = [(1000 + s, bytes(32), s) for s in range(seq, seq + count)]
        by_row.feed(chain)
        by_run.feed_run(seq, count, lambda s: (1000 + s, bytes(32)))
        seq += count
    by_row.add_heads(pending)
    by_run.add_heads(pending)
    assert by_run.finish() == by_row.finish()
    assert (by_run.reach, by_run.heads_seen) == (by_row.reach, by_row.heads_seen)


STREAM_ROWS = st.lists(
    st.tuples(st.sampled_from([b"a", b"b", b"c", b"d"]), st.integers(0, 5)), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(rows=STREAM_ROWS, cuts=st.lists(st.integers(0, 30), max_size=4), clean=st.booleans())
def test_stream_ends_join_clean_exactly_when_the_index_pass_finds_nothing(
    rows: list[tuple[bytes, int]], cuts: list[int], clean: bool
) -> None:
    """Rows in position order, cut into ranges; ``clean`` makes most examples clean."""
    if clean:  # each stream counts 1, 2, 3, ...
        seen: dict[bytes, int] = {}
        for i, (stream, _) in enumerate(rows):
            seen[stream] = seen.get(stream, 0) + 1
            rows[i] = (stream, seen[stream])
    verifier_rows = [(pos, s, v) for pos, (s, v) in enumerate(rows, start=1)]
    join = VersionJoin(max_streams=10)
    bounds = sorted({0, len(verifier_rows), *(c for c in cuts if c < len(verifier_rows))})
    for lo, hi in itertools.pairwise(bounds):
        ends = StreamEnds()
        ends.feed(verifier_rows[lo:hi])
        join.add(ends)
    index = VersionChecker()
    index.feed(sorted((s, v, pos) for pos, s, v in verifier_rows))  # the index's order
    assert join.clean == (not index.findings)


def test_more_streams_than_held_is_not_clean() -> None:
    join = VersionJoin(max_streams=2)
    ends = StreamEnds()
    ends.feed([(1, b"a", 1), (2, b"b", 1), (3, b"c", 1)])
    join.add(ends)
    assert not join.clean
