"""``verify-chain`` as a library call: stream the store, check every byte, report all.

The pure checks live in ``kei.domain.log.verify``; this module feeds them. Order:

1. fold the key events into a key ring (which key was valid where);
2. check every row in position order (``RangeChecker``), in this process or in
   ``jobs`` worker processes ("spawn") that each open the store by URL and check a
   range of positions; ranges are joined at their edges;
3. chain rows whose event row is gone are event-missing (only looked for when the
   number of chain rows differs from the number of chained rows seen);
4. a step back in sequence that repeats an earlier entry's hash is a duplicate;
   key events not applied as written (``KeyRing.problems``) and a first event that
   is not the genesis are findings; every stream's versions are checked along the
   (stream, version) index (``kei.domain.log.versions``), one stream in memory;
5. the RFC 9162 Merkle tree of the chain rows (in position order) is recomputed in
   one more pass over their hashes, keeping only a compact range (O(log n) hashes);
   every stored subtree hash it meets (``app/ledger/merkle_tree.py``) is compared;
   in the same pass, for a ledger whose genesis declares them, the signed heads are
   read a page at a time beside the chain rows and checked (``kei.domain.log.heads``).

   Under ``--quick`` steps 4-5 read the log only when they must: step 2 hands over
   what its rows tell them (``verify_pool.Handover``: the chain rows with the leaves
   already hashed into tiles, each stream's first and last version), and ``_Handed``
   stands in for both passes as long as that is the whole story (each chain row's
   sequence is its leaf index; each stream counts 1, 2, 3, ... in position order).
   A log where it is not (it has findings anyway) gets the passes after step 2;
6. against a checkpoint: origin and signature (by a key valid at its size), then
   truncation and forks (by tree root, or by the chain head for checkpoints written
   before Merkle roots).

Memory stays flat: rows are read a page at a time, few ranges are in flight
(``adapters/workers/verify_pool.py``), and only findings are kept (at most ``VerifyLimits.max_findings``; the
rest are counted in ``findings_omitted``).
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Final

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE, TREE_TABLE, ChainEntry
from kei.adapters.workers.verify_pool import (
    LOWEST,
    Checked,
    Collector,
    Handover,
    InProcesses,
    LeafRun,
    Progress,
    RangeTask,
    check_range_rows,
)
from kei.app.ledger.merkle_tree import BEFORE_ALL
from kei.domain import events
from kei.domain.log.checkpoint import Checkpoint, check_checkpoint, parse_checkpoint
from kei.domain.log.heads import HeadChecker
from kei.domain.log.keyring import KeyRing, KeyStatus, build_keyring
from kei.domain.log.merkle import EMPTY_ROOT, CompactRange
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import (
    Finding,
    FindingKind,
    Link,
    RangeChecker,
    RangeResult,
    check_row_link,
)
from kei.domain.log.versions import VersionChecker, VersionJoin
from kei.errors import CheckpointFormatError, InputError
from kei.limits import LIMITS

MAX_STREAMS_HELD: Final = 100_000
"""Streams whose last version ``--quick`` keeps to check versions in position order;
a log with more gets the pass along the (stream, version) index."""


@dataclass(frozen=True, slots=True)
class VerifyLimits:
    """Every size verification works in, in one place."""

    page: int = 5_000
    range_size: int = 10_000
    parallel_min: int = 20_000
    max_findings: int = LIMITS.max_verify_findings


@dataclass(slots=True)
class VerifyReport:
    """The outcome of one verification run."""

    url: str
    ledger_id: str | None
    events_checked: int = 0
    chain_size: int = 0
    head_hash: bytes | None = None
    quick: bool = False
    findings: list[Finding] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    findings_omitted: int = 0
    max_findings: int = LIMITS.max_verify_findings
    tree_size: int = 0
    tree_root: bytes | None = None
    tree_hashes: tuple[bytes, ...] = ()
    """The compact range of the recomputed tree (``CompactRange.hashes``), not reported."""

    @property
    def ok(self) -> bool:
        return not self.findings and not self.findings_omitted

    def add(self, found: list[Finding], omitted: int = 0) -> None:
        room = max(0, self.max_findings - len(self.findings))
        self.findings.extend(found[:room])
        self.findings_omitted += omitted + max(0, len(found) - room)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": self.url,
            "ledger_id": self.ledger_id,
            "events_checked": self.events_checked,
            "chain_size": self.chain_size,
            "head_hash": None if self.head_hash is None else "sha256:" + self.head_hash.hex(),
            "quick": self.quick,
            "checkpoint": self.checkpoint,
            "tree_size": self.tree_size,
            "tree_root": None if self.tree_root is None else "sha256:" + self.tree_root.hex(),
            "findings": [f.to_dict() for f in self.findings],
            "findings_omitted": self.findings_omitted,
        }


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def read_checkpoint_file(path: Path) -> str:
    """The text of a checkpoint file, checked for shape; InputError when unusable."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(LIMITS.max_note_bytes + 1)
        text = raw.decode("utf-8")
        parse_checkpoint(text)
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"checkpoint {path} is not UTF-8 text") from exc
    except CheckpointFormatError as exc:
        raise InputError(
            f"checkpoint {path} is malformed: {exc}", hint="write one with `kei checkpoint`"
        ) from exc
    return text


def verify_store(
    store: EventStore,
    *,
    jobs: int = 1,
    quick: bool = False,
    checkpoint_text: str | None = None,
    progress: Progress = None,
    synchronous: str = "FULL",
    url: str | None = None,
    limits: VerifyLimits = VerifyLimits(),
) -> VerifyReport:
    """Verify every stored event of ``store``; see the module docstring for the order.

    Workers open the store at ``url`` (default ``store.url``; pass the real URL when
    it holds a password, which ``store.url`` hides).
    """
    try:
        cp = None if checkpoint_text is None else parse_checkpoint(checkpoint_text)
    except CheckpointFormatError as exc:
        raise InputError(f"malformed checkpoint: {exc}") from exc
    top = store.max_position()
    task = RangeTask(
        url or store.url, synchronous, [], quick, limits.page, limits.range_size,
        limits.max_findings, handover=quick,
        tree_at=cp.size if cp is not None and cp.is_tree else None,
    )  # fmt: skip
    serial = jobs <= 1 or top < limits.parallel_min or ":memory:" in task.url
    # --quick checks no signature, so its workers need no key ring: they start now,
    # while this process reads the key events (a scan of the whole events table)
    pool = None if serial or not quick else InProcesses(task, top, jobs, progress)
    try:
        task = replace(task, key_records=_key_records(store))
        if not serial and pool is None:
            pool = InProcesses(task, top, jobs, progress)
        return _verify(store, task, top, cp, limits, pool, progress)
    finally:
        if pool is not None:
            pool.close()


def _verify(
    store: EventStore,
    task: RangeTask,
    top: int,
    cp: Checkpoint | None,
    limits: VerifyLimits,
    pool: InProcesses | None,
    progress: Progress,
) -> VerifyReport:
    """Steps 1-6 (``verify_store``), the ranges checked by ``pool`` (None: here)."""
    ring = build_keyring(task.key_records)  # step 1
    quick, tree_at = task.quick, task.tree_at
    report = VerifyReport(store.url, ring.ledger_id, quick=quick, max_findings=limits.max_findings)
    heads = _head_checker(ring, quick, limits.max_findings)
    handed = _Handed(store, tree_at, limits, heads) if quick else None
    tree_job = None
    if pool is None:
        results: Iterator[Checked] = _serial(store, ring, task, top, progress, handed)
    else:
        if handed is None:  # steps 4-5 beside the workers (which hand them nothing)
            tree_job = _TreeJob(task.url, task.synchronous, tree_at, limits, heads)
        results = iter(pool)

    def recheck(lo: int, hi: int, ref: Link | None) -> RangeResult:
        checker = RangeChecker(ring, quick=quick, prev=ref, max_findings=limits.max_findings)
        for _ in check_range_rows(store, checker, lo, hi, limits.page):
            pass
        return checker.result

    chained = _join(results, report, recheck, None if pool is None else handed)  # step 2
    chain_rows = store.chain_count()
    if chain_rows != chained:  # step 3
        report.add(
            [
                Finding(FindingKind.EVENT_MISSING, e.position, f"event of sequence {e.seq} is gone")
                for e in store.orphan_chain_entries()
            ]
        )
    _classify_step_backs(store, report)  # step 4
    report.add(_key_findings(store, ring))
    if handed is not None:  # steps 4-5 from what step 2 read
        fresh = partial(_head_checker, ring, quick, limits.max_findings)
        root_at = handed.finish(report, chained, chain_rows, fresh)
    elif tree_job is not None:
        root_at = tree_job.join(report)
    else:
        report.add(*_version_gaps(store, limits.page, limits.max_findings))  # step 4
        root_at = _recompute_tree(store, report, tree_at, limits.page, heads)  # step 5
    if cp is not None:
        _check_checkpoint(store, ring, cp, report, root_at)  # step 6
    report.findings.sort(key=lambda f: (f.position is None, f.position or 0))
    return report


def _head_checker(ring: KeyRing, quick: bool, max_findings: int) -> HeadChecker | None:
    """Heads are checked only when the genesis declares them (older ledgers have none)."""
    if not ring.signed_heads or ring.ledger_id is None:
        return None
    return HeadChecker(ring, ring.ledger_id, quick=quick, max_findings=max_findings)


def _key_findings(store: EventStore, ring: KeyRing) -> list[Finding]:
    """Key events not applied as written, and a first event that is not the genesis."""
    found = [Finding(FindingKind(p.kind), p.position, p.detail) for p in ring.problems]
    first = store.next_position(LOWEST)
    if first is not None and ring.genesis_position != first:
        detail = (
            "the first event is not a valid self-signed kei.ledger.genesis"
            if ring.genesis_position is None
            else f"the first event is not the genesis (at position {ring.genesis_position})"
        )
        found.append(Finding(FindingKind.BAD_GENESIS, first, detail))
    return found


def _only_text_streams(store: EventStore, events: int) -> bool:
    """Does the store hold exactly ``events`` event rows, every stream id stored as
    text? (Then a check in position order saw what the pass along the index reads, and
    grouped the streams as it does. SQLite keeps a blob as a blob even in a TEXT
    column, and sorts it after every text; PostgreSQL's column is text.)"""
    if store.url.startswith("postgres"):
        return int(store.select(f"SELECT count(*) FROM {EVENTS_TABLE}")[0][0]) == events
    rows, odd = store.select(
        f"SELECT count(*), sum(typeof(originator_id) != 'text') FROM {EVENTS_TABLE}"
    )[0]
    return int(rows) == events and not odd


def _version_gaps(store: EventStore, page: int, max_findings: int) -> tuple[list[Finding], int]:
    """Every stream's versions are 1, 2, 3, ... in position order (docs/events.md §1):
    one pass along the (stream, version) index, a page at a time, one stream in memory."""
    pg = store.url.startswith("postgres")
    col, stream = (
        ("notification_id", "originator_id") if pg else ("rowid", "CAST(originator_id AS BLOB)")
    )
    head = f"SELECT {stream}, originator_version, {col} FROM {EVENTS_TABLE} "
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


def _key_records(store: EventStore) -> list[StoredRecord]:
    """The key events as records, for the key ring. Rows with mangled values are left
    out (they could only fail their signature, and the scan reports them anyway); text
    that is not UTF-8 decodes with replacement characters, which fails the same way."""
    records = []
    for row in store.scan_types(sorted(events.KEY_EVENT_TYPES)):
        pos, stream, version, type_, state = row[:5]
        if type(version) is not int or version < 0 or not isinstance(state, bytes):
            continue
        if stream is None or type_ is None:
            continue
        text = (bytes(v).decode("utf-8", "replace") for v in (stream, type_))
        records.append(StoredRecord(pos, next(text), version, next(text), state, *row[5:8]))
    return records


def _serial(
    store: EventStore,
    ring: KeyRing,
    task: RangeTask,
    top: int,
    progress: Progress,
    handed: _Handed | None = None,
) -> Iterator[Checked]:
    """The whole log as one range, in this process; with ``handed``, what its rows
    tell the later passes goes there as they are read, ``task.range_size`` rows at a
    time."""
    checker = RangeChecker(ring, quick=task.quick, max_findings=task.max_findings)
    collector = Collector(task.tree_at)
    sink = None
    if handed is not None:

        def sink(rows: list[tuple[Any, ...]]) -> None:
            collector.add(rows)
            if collector.rows >= task.range_size:
                handed.add(collector.take())

    for n in check_range_rows(store, checker, LOWEST, top, task.page, sink):
        if progress:
            progress(n)
    if handed is not None:
        handed.add(collector.take())
    yield LOWEST, top, checker.result, None


def _join(
    results: Iterator[Checked],
    report: VerifyReport,
    recheck: Callable[[int, int, Link | None], RangeResult],
    handed: _Handed | None = None,
) -> int:
    """Collect range results in order; returns the number of chained rows seen.

    A range checked on its own (``first`` set) is only valid when its first chained
    row follows the reference entry of the ranges before it; otherwise (a tampered
    edge) the range is checked again here, from that reference, exactly as a
    single-process run would. Each range's ``Handover`` (None: it has none) goes to
    ``handed``, when given.
    """
    ref: Link | None = None
    chained = 0
    for lo, hi, result, handover in results:
        if result.first is not None and check_row_link(ref, *result.first):
            result = recheck(lo, hi, ref)
        if handed is not None:
            handed.add(handover)
        report.add(result.findings, result.omitted)
        report.events_checked += result.count
        chained += result.count - result.unchained
        ref = result.last or ref
    if ref is not None and ref.seq is not None:
        report.chain_size, report.head_hash = ref.seq + 1, ref.hash
    return chained


def _classify_step_backs(store: EventStore, report: VerifyReport) -> None:
    """A step back that repeats an earlier entry exactly is a duplicate, not a reordering."""
    looked = 0
    for i, finding in enumerate(report.findings):
        if finding.kind is not FindingKind.REORDERED or finding.position is None:
            continue
        looked += 1
        if looked > LIMITS.max_step_backs_classified:
            return
        rows = store.scan(after=finding.position - 1, upto=finding.position, limit=1)
        seq, stored_hash = (rows[0][5], rows[0][7]) if rows else (None, None)
        original = _first_entry(store, seq) if type(seq) is int else None
        if original and original.position != finding.position and original.hash == stored_hash:
            report.findings[i] = Finding(
                FindingKind.DUPLICATE,
                finding.position,
                f"repeats the entry of sequence {seq} at position {original.position}",
            )


def _first_entry(store: EventStore, seq: int) -> ChainEntry | None:
    """The chain row of sequence ``seq`` at the lowest position. A log that holds a
    sequence twice has findings, and they name the *earlier* row, whereas
    ``store.chain_at`` prefers the row at position ``seq + 1``."""
    rows = store.select(
        f"SELECT position, seq, prev_hash, hash FROM {CHAIN_TABLE} WHERE seq = ? "
        "ORDER BY position LIMIT 1",
        (seq,),
    )
    if not rows:
        return None
    position, found, prev_hash, stored = rows[0]
    return ChainEntry(int(position), int(found), bytes(prev_hash), bytes(stored))


class _TreeJob:
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
                self._report.add(*_version_gaps(store, page, self._limits.max_findings))
                self._root_at = _recompute_tree(store, self._report, self._at, page, self._heads)
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


class _Handed:
    """Steps 4-5 fed from step 2's own reads (``Handover``s, ``--quick``): the stream
    versions, the tree, the stored subtree hashes and the signed heads, with the same
    findings as ``_version_gaps`` and ``_recompute_tree``, which run instead when what
    was handed over cannot stand for them.

    Versions: when every stream counts 1, 2, 3, ... in position order over every
    event row (``VersionJoin``) and every stream id is stored as text, the pass along
    the index has nothing to find; otherwise it runs, and its findings are reported.

    Tree: a run is taken at its word that its first row's sequence is its leaf index.
    It must start where the tree ends, and ``finish`` confirms the rest (every chain
    row was in a run); then the leaves are exactly the chain rows in position order.
    Heads and stored hashes are handled in chunks of ``page`` leaves, the pages that
    ``_recompute_tree`` reads, so even the order of the findings is its order.
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
        self._versions = VersionJoin(MAX_STREAMS_HELD)

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
        if not (self._versions.clean and _only_text_streams(store, report.events_checked)):
            report.add(*_version_gaps(store, limits.page, limits.max_findings))
        if not (self._valid and self.tree.size == chained == chain_rows):
            return _recompute_tree(store, report, self._at, limits.page, fresh_heads())
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
            _compare_stored(self._store, self._report, met, positions, first)
            self._met = [] if split is None else self._met[split:]
        self._done = end
        self._held = [r for r in runs if r.start + r.count > end]


def _as_hash(value: Any) -> bytes:
    """A stored hash as bytes; a value of another type (an edited row) hashes as its text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return b"" if value is None else str(value).encode()


def _recompute_tree(
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
        hashes = [h if type(h) is bytes else _as_hash(h) for _, h, _ in rows]
        if at is not None and first < at <= first + len(hashes):
            tree.extend(hashes[: at - first])
            root_at = tree.root()
            hashes = hashes[at - first :]
        tree.extend(hashes)
        if met:
            _compare_stored(store, report, met, [int(r[0]) for r in rows], first)
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


def _compare_stored(
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
            if want is not None and (_as_hash(h) != want or last != position):
                lo, hi = int(idx) << level, (int(idx) + 1) << level
                detail = (
                    f"the stored hash of tree leaves [{lo}, {hi}) differs from the chain's; "
                    f"delete the rows of {TREE_TABLE} and kei recomputes them"
                )
                report.add([Finding(FindingKind.STORED_TREE, position, detail)])


def _check_checkpoint(
    store: EventStore, ring: KeyRing, cp: Checkpoint, report: VerifyReport, root_at: bytes | None
) -> None:
    """Step 6 (``kei.domain.log.checkpoint.check_checkpoint``), fed from the store."""
    report.checkpoint = {
        "origin": cp.origin,
        "size": cp.size,
        "format": "tree" if cp.is_tree else "chain-head",
        "root_hash": "sha256:" + cp.root_hash.hex(),
    }

    def entry_at(seq: int) -> tuple[int, bytes] | None:
        entry = _first_entry(store, seq)
        return None if entry is None else (entry.position, entry.hash)

    report.add(
        check_checkpoint(
            cp,
            ledger_id=ring.ledger_id,
            public_keys=[k.public_key for k in ring.keys.values()],
            keys_at=lambda pos: [
                k.public_key
                for k in ring.keys.values()
                if ring.status_at(k.key_id, pos) is KeyStatus.ACTIVE
            ],
            chain_size=report.chain_size or store.chain_size(),
            entry_at=entry_at,
            tree_root_at=lambda size: root_at if size == cp.size else None,
        )
    )
