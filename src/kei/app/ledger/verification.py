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
   already hashed into tiles, each stream's first and last version), and ``Handed``
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
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from kei.adapters.files.bounded_read import read_at_most
from kei.adapters.store import EventStore
from kei.adapters.store.base import CHAIN_TABLE, ChainEntry
from kei.adapters.workers.verify_pool import (
    LOWEST,
    Checked,
    Collector,
    InProcesses,
    Progress,
    RangeTask,
    check_range_rows,
)
from kei.app.ledger.tree_pass import (
    Handed,
    TreeJob,
    recompute_tree,
    version_gaps,
)
from kei.app.ledger.verify_report import VerifyLimits, VerifyReport
from kei.domain import events
from kei.domain.log.checkpoint import Checkpoint, check_checkpoint, parse_checkpoint
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.heads import HeadChecker
from kei.domain.log.keyring import KeyRing, KeyStatus, build_keyring
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import (
    Link,
    RangeChecker,
    RangeResult,
    check_row_link,
)
from kei.errors import CheckpointFormatError, InputError
from kei.limits import LIMITS

__all__ = [
    "VerifyLimits",
    "VerifyReport",
    "default_jobs",
    "key_findings",
    "read_checkpoint_file",
    "verify_store",
]


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def read_checkpoint_file(path: Path) -> str:
    """The text of a checkpoint file, checked for shape; InputError when unusable."""
    try:
        text = read_at_most(path, LIMITS.max_note_bytes).decode("utf-8")
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
    handed = Handed(store, tree_at, limits, heads) if quick else None
    tree_job = None
    if pool is None:
        results: Iterator[Checked] = _serial(store, ring, task, top, progress, handed)
    else:
        if handed is None:  # steps 4-5 beside the workers (which hand them nothing)
            tree_job = TreeJob(task.url, task.synchronous, tree_at, limits, heads)
        results = iter(pool)

    def recheck(lo: int, hi: int, ref: Link | None) -> RangeResult:
        checker = RangeChecker(ring, quick=quick, prev=ref, max_findings=limits.max_findings)
        for _ in check_range_rows(store, checker, (lo, hi), limits.page):
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
    report.add(key_findings(store, ring))
    if handed is not None:  # steps 4-5 from what step 2 read
        fresh = partial(_head_checker, ring, quick, limits.max_findings)
        root_at = handed.finish(report, chained, chain_rows, fresh)
    elif tree_job is not None:
        root_at = tree_job.join(report)
    else:
        report.add(*version_gaps(store, limits.page, limits.max_findings))  # step 4
        root_at = recompute_tree(store, report, tree_at, limits.page, heads)  # step 5
    if cp is not None:
        _check_checkpoint(store, ring, cp, report, root_at)  # step 6
    report.findings.sort(key=lambda f: (f.position is None, f.position or 0))
    return report


def _head_checker(ring: KeyRing, quick: bool, max_findings: int) -> HeadChecker | None:
    """Heads are checked only when the genesis declares them (older ledgers have none)."""
    if not ring.signed_heads or ring.ledger_id is None:
        return None
    return HeadChecker(ring, ring.ledger_id, quick=quick, max_findings=max_findings)


def key_findings(store: EventStore, ring: KeyRing) -> list[Finding]:
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
    handed: Handed | None = None,
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

    for n in check_range_rows(store, checker, (LOWEST, top), task.page, sink):
        if progress:
            progress(n)
    if handed is not None:
        handed.add(collector.take())
    yield LOWEST, top, checker.result, None


def _join(
    results: Iterator[Checked],
    report: VerifyReport,
    recheck: Callable[[int, int, Link | None], RangeResult],
    handed: Handed | None = None,
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
