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
   read a page at a time beside the chain rows and checked (``kei.domain.log.heads``);
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE, TREE_TABLE
from kei.adapters.workers.verify_pool import (
    LOWEST,
    Progress,
    Ranged,
    RangeTask,
    check_in_processes,
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
from kei.domain.log.versions import VersionChecker
from kei.errors import CheckpointFormatError, InputError
from kei.limits import LIMITS


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
    key_records = _key_records(store)
    ring = build_keyring(key_records)  # step 1
    report = VerifyReport(store.url, ring.ledger_id, quick=quick, max_findings=limits.max_findings)
    top = store.max_position()
    task = RangeTask(
        url or store.url, synchronous, key_records, quick,
        limits.page, limits.range_size, limits.max_findings,
    )  # fmt: skip
    tree_at = cp.size if cp is not None and cp.is_tree else None
    heads = _head_checker(ring, quick, limits.max_findings)
    tree_job = None
    if jobs <= 1 or top < limits.parallel_min or ":memory:" in task.url:
        results = _serial(store, ring, task, top, progress)
    else:
        tree_job = _TreeJob(task.url, synchronous, tree_at, limits, heads)  # steps 4-5
        results = check_in_processes(task, top, jobs, progress)

    def recheck(lo: int, hi: int, ref: Link | None) -> RangeResult:
        checker = RangeChecker(ring, quick=quick, prev=ref, max_findings=limits.max_findings)
        for _ in check_range_rows(store, checker, lo, hi, limits.page):
            pass
        return checker.result

    chained = _join(results, report, recheck)  # step 2
    if store.chain_count() != chained:  # step 3
        report.add(
            [
                Finding(FindingKind.EVENT_MISSING, e.position, f"event of sequence {e.seq} is gone")
                for e in store.orphan_chain_entries()
            ]
        )
    _classify_step_backs(store, report)  # step 4
    report.add(_key_findings(store, ring))
    if tree_job is None:
        report.add(*_version_gaps(store, limits.page, limits.max_findings))  # step 4
        root_at = _recompute_tree(store, report, tree_at, limits.page, heads)  # step 5
    else:
        root_at = tree_job.join(report)
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
    store: EventStore, ring: KeyRing, task: RangeTask, top: int, progress: Progress
) -> Iterator[Ranged]:
    checker = RangeChecker(ring, quick=task.quick, max_findings=task.max_findings)
    for n in check_range_rows(store, checker, LOWEST, top, task.page):
        if progress:
            progress(n)
    yield LOWEST, top, checker.result


def _join(
    results: Iterator[Ranged],
    report: VerifyReport,
    recheck: Callable[[int, int, Link | None], RangeResult],
) -> int:
    """Collect range results in order; returns the number of chained rows seen.

    A range checked on its own (``first`` set) is only valid when its first chained
    row follows the reference entry of the ranges before it; otherwise (a tampered
    edge) the range is checked again here, from that reference, exactly as a
    single-process run would.
    """
    ref: Link | None = None
    chained = 0
    for lo, hi, result in results:
        if result.first is not None and check_row_link(ref, *result.first):
            result = recheck(lo, hi, ref)
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
        original = store.chain_at(seq) if type(seq) is int else None
        if original and original.position != finding.position and original.hash == stored_hash:
            report.findings[i] = Finding(
                FindingKind.DUPLICATE,
                finding.position,
                f"repeats the entry of sequence {seq} at position {original.position}",
            )


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
    positions: list[int],
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
        entry = store.chain_at(seq)
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
