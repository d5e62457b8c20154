"""``verify-chain`` as a library call: stream the store, check every byte, report all.

The pure checks live in ``kei.domain.verify``; this module feeds them. It first
folds the key events into a key ring (validity by position), then checks the log in
ranges of positions, in this process or in ``jobs`` worker processes that each open
the store themselves, joins the ranges at their edges, looks for chain entries whose
event is gone, and finally compares the log with a checkpoint if one is given.
Memory stays flat: a range is read page by page and only findings are kept.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import iter_all
from kei.domain import events
from kei.domain.checkpoint import Checkpoint, parse_checkpoint, signed_by
from kei.domain.keyring import KeyRing, build_keyring
from kei.domain.records import StoredRecord
from kei.domain.verify import Finding, FindingKind, Link, RangeResult, check_link, check_range

RANGE_SIZE: Final = 50_000
PARALLEL_MIN: Final = 20_000
MAX_FINDINGS_PER_RANGE: Final = 10_000


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

    @property
    def ok(self) -> bool:
        return not self.findings

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
            "findings": [f.to_dict() for f in self.findings],
        }


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def verify_store(
    store: EventStore,
    *,
    jobs: int = 1,
    quick: bool = False,
    checkpoint_text: str | None = None,
    progress: Callable[[int], None] | None = None,
    synchronous: str = "FULL",
) -> VerifyReport:
    """Verify every stored event of ``store``; see the module docstring for the order."""
    key_records = store.read_types(sorted(events.KEY_EVENT_TYPES))
    ring = build_keyring(key_records)
    report = VerifyReport(url=store.url, ledger_id=ring.ledger_id, quick=quick)
    top = store.max_position()
    results = _run_ranges(store, key_records, ring, top, jobs, quick, progress, synchronous)
    _join(results, report)
    report.findings.extend(
        Finding(FindingKind.EVENT_MISSING, e.position, f"event of sequence {e.seq} is gone")
        for e in store.orphan_chain_entries()
    )
    report.chain_size = store.chain_size()
    head = store.chain_at(report.chain_size - 1) if report.chain_size else None
    report.head_hash = head.hash if head else None
    if ring.genesis_position is None and report.events_checked:
        report.findings.append(Finding(FindingKind.UNKNOWN_KEY, None, "no valid genesis event"))
    if checkpoint_text is not None:
        _check_checkpoint(store, ring, parse_checkpoint(checkpoint_text), report)
    report.findings.sort(key=lambda f: (f.position is None, f.position or 0))
    return report


def _run_ranges(
    store: EventStore,
    key_records: list[StoredRecord],
    ring: KeyRing,
    top: int,
    jobs: int,
    quick: bool,
    progress: Callable[[int], None] | None,
    synchronous: str,
) -> Iterator[RangeResult]:
    bounds = [(lo, min(lo + RANGE_SIZE, top)) for lo in range(0, top, RANGE_SIZE)]
    if jobs <= 1 or top < PARALLEL_MIN or store.url.startswith("sqlite:///:memory:"):
        for lo, hi in bounds:
            result = _check(iter_all(store, after=lo, upto=hi), ring, quick)
            if progress:
                progress(result.count)
            yield result
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [
            pool.submit(_worker, store.url, synchronous, key_records, lo, hi, quick)
            for lo, hi in bounds
        ]
        for future in futures:
            result = future.result()
            if progress:
                progress(result.count)
            yield result


def _check(records: Iterator[StoredRecord], ring: KeyRing, quick: bool) -> RangeResult:
    result = check_range(records, ring, quick=quick, link_first=False)
    del result.findings[MAX_FINDINGS_PER_RANGE:]
    return result


def _worker(
    url: str, synchronous: str, key_records: list[StoredRecord], lo: int, hi: int, quick: bool
) -> RangeResult:
    store = open_store(url, synchronous=synchronous)
    try:
        return _check(iter_all(store, after=lo, upto=hi), build_keyring(key_records), quick)
    finally:
        store.close()


def _join(results: Iterator[RangeResult], report: VerifyReport) -> None:
    prev: Link | None = None
    for result in results:
        if result.first is None:
            continue
        report.findings.extend(check_link(prev, result.first))
        report.findings.extend(result.findings)
        report.events_checked += result.count
        prev = result.last


def _check_checkpoint(
    store: EventStore, ring: KeyRing, cp: Checkpoint, report: VerifyReport
) -> None:
    report.checkpoint = {"origin": cp.origin, "size": cp.size, "head_hash": "sha256:" + cp.head_hash.hex()}
    if cp.origin != ring.ledger_id:
        report.findings.append(
            Finding(FindingKind.BAD_CHECKPOINT, None, f"checkpoint is for ledger {cp.origin}, not this one")
        )
        return
    if signed_by(cp, [k.public_key for k in ring.keys.values()]) is None:
        report.findings.append(
            Finding(FindingKind.BAD_CHECKPOINT, None, "checkpoint has no valid signature by a ledger key")
        )
        return
    if cp.size == 0:
        return
    if report.chain_size < cp.size:
        report.findings.append(
            Finding(
                FindingKind.TRUNCATED,
                None,
                f"checkpoint covers {cp.size} events but the log holds {report.chain_size}",
            )
        )
        return
    entry = store.chain_at(cp.size - 1)
    if entry is None or entry.hash != cp.head_hash:
        report.findings.append(
            Finding(
                FindingKind.FORKED,
                None if entry is None else entry.position,
                f"event {cp.size - 1} differs from the checkpoint: history was rewritten",
            )
        )
