"""Checking ranges of the log in worker processes, for ``verify-chain --jobs N``.

ed25519 verification holds the GIL, so only processes scale. Rules:

- workers are started from ``workers.context()`` ("spawn": no forked database
  connections or locks; they die with this process and never import the caller's
  script) and each opens the store itself, by URL, once (``_start_worker``);
- a worker checks one range of positions on its own, "floating" (``RangeChecker``
  with ``link_first=False``), and returns only its findings and edges; the caller
  joins ranges in order and re-checks a range whose first link does not hold;
- at most ``IN_FLIGHT_PER_JOB × jobs`` ranges are queued, so memory stays flat however
  long the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from kei.adapters.store import EventStore, open_store
from kei.adapters.workers import processes as workers
from kei.domain.log.keyring import build_keyring
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import RangeChecker, RangeResult
from kei.errors import StoreError

LOWEST: Final = -(2**63)
IN_FLIGHT_PER_JOB: Final = 2

Progress: TypeAlias = Callable[[int], None] | None
Ranged: TypeAlias = tuple[int, int, RangeResult]
"""(after, upto, result) of one range of positions."""


@dataclass(frozen=True, slots=True)
class RangeTask:
    """What a worker needs to check ranges on its own."""

    url: str
    synchronous: str
    key_records: list[StoredRecord]
    quick: bool
    page: int
    range_size: int
    max_findings: int


def check_range_rows(
    store: EventStore, checker: RangeChecker, after: int, upto: int, page: int
) -> Iterator[int]:
    """Feed the rows ``after < position <= upto`` to ``checker``; yields rows per query.

    Each query covers a window of at most ``page`` positions, so it is a short index
    range scan whatever the planner believes about the table (PostgreSQL right after
    a bulk load has no statistics); an empty window jumps to the next position.
    """
    while after < upto:
        window = min(upto, after + page)
        rows = store.scan(after=after, upto=window, limit=page)
        if rows:
            checker.feed(rows)
            yield len(rows)
            after = window
            continue
        nxt = store.next_position(window)
        if nxt is None or nxt > upto:
            return
        after = nxt - 1


def bounds(top: int, size: int) -> Iterator[tuple[int, int]]:
    """Ranges of at most ``size`` positions up to ``top``; the first reaches down to LOWEST."""
    yield LOWEST, min(size, top)
    yield from ((lo, min(lo + size, top)) for lo in range(size, top, size))


def check_in_processes(
    task: RangeTask, top: int, jobs: int, progress: Progress
) -> Iterator[Ranged]:
    """Range results in position order, checked by ``jobs`` spawned processes."""
    ctx = workers.context()
    window: deque[tuple[int, int, Future[RangeResult]]] = deque()
    try:
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_start_worker, initargs=(task,)
        ) as pool:
            for lo, hi in bounds(top, task.range_size):
                window.append((lo, hi, pool.submit(_worker, lo, hi)))
                if len(window) >= IN_FLIGHT_PER_JOB * jobs:
                    yield _done(*window.popleft(), progress)
            while window:
                yield _done(*window.popleft(), progress)
    except BrokenProcessPool as exc:
        raise StoreError(f"a verification worker process died: {exc}") from exc


def _done(lo: int, hi: int, future: Future[RangeResult], progress: Progress) -> Ranged:
    result = future.result()
    if progress:
        progress(result.count)
    return lo, hi, result


_WORKER: dict[str, Any] = {}


def _start_worker(task: RangeTask) -> None:
    """Runs once in each spawned process: open the store by URL, build the key ring."""
    _WORKER["store"] = open_store(task.url, synchronous=task.synchronous, read_only=True)
    _WORKER["ring"] = build_keyring(task.key_records)
    _WORKER["task"] = task


def _worker(lo: int, hi: int) -> RangeResult:
    """Runs in a worker process: check one range on its own and hand back the findings."""
    task: RangeTask = _WORKER["task"]
    checker = RangeChecker(
        _WORKER["ring"], quick=task.quick, link_first=False, max_findings=task.max_findings
    )
    for _ in check_range_rows(_WORKER["store"], checker, lo, hi, task.page):
        pass
    return checker.result
