"""The tree pass of ``verify-chain`` (step 5 of ``verification.py``): the Merkle tree
recomputed over the chain rows, the stored subtree hashes compared with it, and the
signed heads checked in the same pass; or, under ``--quick``, the same built from what
the range workers handed over (``Handed``), without reading the log again.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE, TREE_TABLE
from kei.adapters.store.dialect import POSTGRES, Dialect
from kei.adapters.workers.verify_pool import (
    Handover,
    LeafRun,
)
from kei.app.ledger.merkle_tree import BEFORE_ALL
from kei.app.ledger.verify_report import VerifyLimits, VerifyReport
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.heads import HeadChecker
from kei.domain.log.merkle import EMPTY_ROOT, CompactRange
from kei.domain.log.versions import VersionChecker, VersionJoin
from kei.limits import LIMITS


class TreeJob:
    """Step 5 (and step 4's stream versions) on a thread of its own store connection
    while the worker processes check signatures: this process only waits for them, so
    these passes cost the run a share of a core instead of serial passes at the end."""

    def __init__(
        self,
        url: str,
        synchronous: str,
        at: int | None,
        limits: VerifyLimits,
        heads: HeadChecker | None,
    ) -> None:
        self._url, self._synchronous, self._at, self._limits = url, synchronous, at, limits
        self._heads = heads
        self._report = VerifyReport(url, None, max_findings=limits.max_findings)
        self._root_at: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kei-verify-tree", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            store = open_store(self._url, synchronous=self._synchronous)
            try:
                page = self._limits.page
                self._report.add(*version_gaps(store, page, self._limits.max_findings))
                self._root_at = recompute_tree(store, self._report, self._at, page, self._heads)
            finally:
                store.close()
        except BaseException as exc:  # re-raised in the caller's thread by join()
            self._error = exc

    def join(self, report: VerifyReport) -> bytes | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        report.add(self._report.findings, self._report.findings_omitted)
        report.tree_size, report.tree_root = self._report.tree_size, self._report.tree_root
        report.tree_hashes = self._report.tree_hashes
        return self._root_at


class Handed:
    """Steps 4-5 fed from step 2's own reads (``Handover``s, ``--quick``): the stream
    versions, the tree, the stored subtree hashes and the signed heads, with the same
    findings as ``version_gaps`` and ``recompute_tree``, which run instead when what
    was handed over cannot stand for them.

    Versions: when every stream counts 1, 2, 3, ... in position order over every
    event row (``VersionJoin``) and every stream id is stored as text, the pass along
    the index has nothing to find; otherwise it runs, and its findings are reported.

    Tree: a run is taken at its word that its first row's sequence is its leaf index.
    It must start where the tree ends, and ``finish`` confirms the rest (every chain
    row was in a run); then the leaves are exactly the chain rows in position order.
    Heads and stored hashes are handled in chunks of ``page`` leaves, the pages that
    ``recompute_tree`` reads, so even the order of the findings is its order.
    """

    def __init__(
        self, store: EventStore, at: int | None, limits: VerifyLimits, heads: HeadChecker | None
    ) -> None:
        self._store, self._at, self._limits, self._page = store, at, limits, limits.page
        self._met: list[tuple[int, int, bytes]] = []
        stored = store.has_tree_table()
        self.tree = CompactRange(on_tile=(lambda *n: self._met.append(n)) if stored else None)
        self._root_at = EMPTY_ROOT if at == 0 else None
        self._heads = heads
        self._loader = None if heads is None else HeadLoader(store, heads, limits.page)
        self._report = VerifyReport(store.url, None, max_findings=limits.max_findings)
        self._held: list[LeafRun] = []
        self._done = 0
        self._valid = True
        self._versions = VersionJoin(LIMITS.max_streams_held)

    def add(self, handover: Handover | None) -> None:
        """The next range's handover, in position order (None: the range has none)."""
        self._versions.add(None if handover is None else handover.streams)
        if self._valid:
            self._add_run(None if handover is None else handover.leaves)

    def _add_run(self, run: LeafRun | None) -> None:
        if run is None or (run.count and run.start != self.tree.size):
            self._valid, self._held, self._met = False, [], []
            return
        if not run.count:
            return
        if self._at is None or not self.tree.size < self._at <= self.tree.size + run.count:
            self.tree.add_pieces(run.pieces)
        else:
            for piece in run.pieces:  # no piece straddles `at` (``RangeTask.tree_at``)
                self.tree.add_pieces((piece,))
                if self.tree.size == self._at:
                    self._root_at = self.tree.root()
        self._held.append(run)
        while self.tree.size - self._done >= self._page:
            self._chunk(self._done + self._page)

    def finish(
        self,
        report: VerifyReport,
        chained: int,
        chain_rows: int,
        fresh_heads: Callable[[], HeadChecker | None],
    ) -> bytes | None:
        """Add steps 4-5's findings and the tree to ``report``, after step 2 saw
        ``chained`` chained rows and the store holds ``chain_rows`` chain rows. Returns
        the root at ``at`` leaves (None: not reached)."""
        limits, store = self._limits, self._store
        if not (self._versions.clean and only_text_streams(store, report.events_checked)):
            report.add(*version_gaps(store, limits.page, limits.max_findings))
        if not (self._valid and self.tree.size == chained == chain_rows):
            return recompute_tree(store, report, self._at, limits.page, fresh_heads())
        if self.tree.size > self._done:
            self._chunk(self.tree.size)
        report.add(self._report.findings, self._report.findings_omitted)
        if self._loader is not None and self._heads is not None:
            report.add(self._loader.finish(), self._heads.omitted)
        report.tree_size, report.tree_root = self.tree.size, self.tree.root()
        report.tree_hashes = self.tree.hashes
        return self._root_at

    def _chunk(self, end: int) -> None:
        """Leaves ``[self._done, end)``, all in held runs: their heads and stored hashes."""
        first, runs = self._done, self._held

        def entry(seq: int) -> tuple[int, bytes]:
            return next(r for r in runs if seq < r.start + r.count).entry(seq)

        if self._loader is not None:
            self._loader.feed_run(first, end - first, entry)
        split = next((i for i, m in enumerate(self._met) if ((m[1] + 1) << m[0]) > end), None)
        met = self._met if split is None else self._met[:split]
        if met:
            positions = array("q")
            for r in runs:
                lo, hi = max(first, r.start) - r.start, min(end, r.start + r.count) - r.start
                positions.extend(r.positions[max(lo, 0) : max(hi, 0)])
            compare_stored(self._store, self._report, met, positions, first)
            self._met = [] if split is None else self._met[split:]
        self._done = end
        self._held = [r for r in runs if r.start + r.count > end]


def as_hash(value: Any) -> bytes:
    """A stored hash as bytes; a value of another type (an edited row) hashes as its text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return b"" if value is None else str(value).encode()


def recompute_tree(
    store: EventStore,
    report: VerifyReport,
    at: int | None,
    page: int,
    heads: HeadChecker | None = None,
) -> bytes | None:
    """Step 5: the tree of every chain row; returns the root at ``at`` leaves, if asked.
    With ``heads``, the same pass checks the signed heads (step 5b)."""
    stored = store.has_tree_table()
    met: list[tuple[int, int, bytes]] = []
    tree = CompactRange(on_tile=(lambda *node: met.append(node)) if stored else None)
    root_at = EMPTY_ROOT if at == 0 else None
    after = BEFORE_ALL
    loader = None if heads is None else HeadLoader(store, heads, page)
    sql = (
        f"SELECT position, hash, seq FROM {CHAIN_TABLE} WHERE position > ? "
        "ORDER BY position LIMIT ?"
    )
    while rows := store.select(sql, (after, page)):
        if loader is not None:
            loader.feed(rows)
        first = tree.size
        hashes = [h if type(h) is bytes else as_hash(h) for _, h, _ in rows]
        if at is not None and first < at <= first + len(hashes):
            tree.extend(hashes[: at - first])
            root_at = tree.root()
            hashes = hashes[at - first :]
        tree.extend(hashes)
        if met:
            compare_stored(store, report, met, [int(r[0]) for r in rows], first)
            met.clear()
        after = int(rows[-1][0])
    if loader is not None:
        report.add(loader.finish(), heads.omitted if heads is not None else 0)
    report.tree_size, report.tree_root, report.tree_hashes = tree.size, tree.root(), tree.hashes
    return root_at


class HeadLoader:
    """Feeds a ``HeadChecker`` head rows a page at a time, just ahead of the chain walk."""

    def __init__(self, store: EventStore, checker: HeadChecker, page: int) -> None:
        self._store, self._checker, self._page = store, checker, page
        self._after, self._done = -1, False

    def start_after(self, counter: int) -> None:
        """Load heads after counter ``counter`` only (a check of part of a log)."""
        self._after = counter

    def _load(self) -> None:
        rows = self._store.read_heads(after=self._after, limit=self._page)
        self._checker.add_heads(rows)
        self._done = len(rows) < self._page
        if rows:
            last = rows[-1][0]
            self._after = last if type(last) is int else self._after + len(rows)

    def feed_run(self, first_seq: int, count: int, entry: Callable[[int], tuple[int, Any]]) -> None:
        """``feed`` of a run of rows whose sequences count up by one from ``first_seq``
        (``HeadChecker.feed_run``): heads are loaded past its last sequence first."""
        want = first_seq + count - 1
        while not self._done and self._checker.reach < want:
            self._load()
        self._checker.feed_run(first_seq, count, entry)

    def feed(self, rows: list[tuple[Any, ...]]) -> None:
        """Chain rows (position, hash, seq): heads are loaded past the page's last seq
        first (in a log whose seqs go back, the highest may be earlier: then the
        rows past the loaded heads are findings anyway)."""
        want = rows[-1][2]
        while not self._done and (type(want) is not int or self._checker.reach < want):
            self._load()
        self._checker.feed(rows)

    def finish(self) -> list[Finding]:
        while not self._done:
            self._load()
        return self._checker.finish()


def compare_stored(
    store: EventStore,
    report: VerifyReport,
    met: list[tuple[int, int, bytes]],
    positions: Sequence[int],
    first: int,
) -> None:
    """Stored subtree hashes must equal the ones just computed from the chain."""
    for level in sorted({m[0] for m in met}):
        mine = {i: h for lv, i, h in met if lv == level}
        rows = store.select(
            f"SELECT idx, hash, last_position FROM {TREE_TABLE} "
            "WHERE level = ? AND idx >= ? AND idx <= ? ORDER BY idx",
            (level, min(mine), max(mine)),
        )
        for idx, h, last in rows:
            want = mine.get(int(idx))
            end = ((int(idx) + 1) << level) - 1
            position = positions[end - first] if 0 <= end - first < len(positions) else None
            if want is not None and (as_hash(h) != want or last != position):
                lo, hi = int(idx) << level, (int(idx) + 1) << level
                detail = (
                    f"the stored hash of tree leaves [{lo}, {hi}) differs from the chain's; "
                    f"delete the rows of {TREE_TABLE} and kei recomputes them"
                )
                report.add([Finding(FindingKind.STORED_TREE, position, detail)])


def only_text_streams(store: EventStore, events: int) -> bool:
    """Does the store hold exactly ``events`` event rows, every stream id stored as
    text? (Then a check in position order saw what the pass along the index reads, and
    grouped the streams as it does. SQLite keeps a blob as a blob even in a TEXT
    column, and sorts it after every text; PostgreSQL's column is text.)"""
    if Dialect.of(store.url) is POSTGRES:
        return int(store.select(f"SELECT count(*) FROM {EVENTS_TABLE}")[0][0]) == events
    rows, odd = store.select(
        f"SELECT count(*), sum(typeof(originator_id) != 'text') FROM {EVENTS_TABLE}"
    )[0]
    return int(rows) == events and not odd


def version_gaps(store: EventStore, page: int, max_findings: int) -> tuple[list[Finding], int]:
    """Every stream's versions are 1, 2, 3, ... in position order (docs/events.md §1):
    one pass along the (stream, version) index, a page at a time, one stream in memory."""
    dialect = Dialect.of(store.url)
    stream = "originator_id" if dialect is POSTGRES else "CAST(originator_id AS BLOB)"
    head = f"SELECT {stream}, originator_version, {dialect.position} FROM {EVENTS_TABLE} "
    order = "ORDER BY originator_id, originator_version LIMIT ?"
    sql = head + "WHERE (originator_id, originator_version) > (CAST(? AS TEXT), ?) " + order
    first = head + order
    checker = VersionChecker(max_findings)
    rows = store.select(first, (page,))
    while rows:
        checker.feed(rows)
        stream, version = rows[-1][0], rows[-1][1]
        rows = store.select(sql, (stream, version, page)) if len(rows) == page else []
    return checker.findings, checker.omitted
