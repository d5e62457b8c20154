"""Checking ranges of the log in worker processes, for ``verify-chain --jobs N``.

ed25519 verification holds the GIL, so only processes scale. Rules:

- workers are started from ``workers.context()`` ("spawn": no forked database
  connections or locks; they die with this process and never import the caller's
  script) and each opens the store itself, by URL, once (``_start_worker``);
- a worker checks one range of positions on its own, "floating" (``RangeChecker``
  with ``link_first=False``), and returns only its findings and edges; the caller
  joins ranges in order and re-checks a range whose first link does not hold;
- at most ``IN_FLIGHT_PER_JOB × jobs`` ranges are queued, so memory stays flat however
  long the log; the processes start when ``InProcesses`` is made, so the caller can
  read meanwhile (``--quick`` workers need no key ring: ``RangeTask.key_records`` is
  empty for them);
- asked (``RangeTask.handover``, for ``--quick``), a worker also hands back what its
  range's rows tell the later passes (``Handover``): the chain rows for the Merkle tree
  and the signed heads, the leaves already hashed into tiles (``LeafRun``), and each
  stream's first and last version (``StreamEnds``); the caller then reads the log
  only once.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from typing import Any, Final, TypeAlias

from msgspec import Struct

from kei.adapters.store import EventStore, open_store
from kei.adapters.workers import processes as workers
from kei.domain.log.envelope import HASH_LEN
from kei.domain.log.keyring import build_keyring
from kei.domain.log.merkle import subtree_pieces
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import RangeChecker, RangeResult
from kei.domain.log.versions import StreamEnds
from kei.errors import StoreError

LOWEST: Final = -(2**63)
IN_FLIGHT_PER_JOB: Final = 2
SCAN_PAGE: Final = 5_000
"""Rows a verifier's scan asks the store for at a time (``check_range_rows``)."""

Progress: TypeAlias = Callable[[int], None] | None
Ranged: TypeAlias = tuple[int, int, RangeResult]
"""(after, upto, result) of one range of positions."""
Sink: TypeAlias = Callable[[list[tuple[Any, ...]]], None]
Checked: TypeAlias = tuple[int, int, RangeResult, "Handover | None"]
"""(after, upto, result, handover) of one range of positions."""


class RangeTask(Struct, frozen=True):
    """What a worker needs to check ranges on its own."""

    url: str
    synchronous: str
    key_records: list[StoredRecord]
    quick: bool
    page: int
    range_size: int
    max_findings: int
    handover: bool = False
    """Hand back each range's ``Handover`` too (see ``Collector``)."""
    tree_at: int | None = None
    """A tree size whose root the caller wants: no tile of a ``LeafRun`` straddles it."""


class LeafRun(Struct, frozen=True):
    """The chain rows of a range whose sequences count up by one, for the tree pass.

    ``start`` is the first row's sequence, which is its leaf index in a log that
    verifies (the caller checks that it is, else reads the chain itself);
    ``positions`` and ``hashes`` (32 bytes each, concatenated) are the rows' columns;
    ``pieces`` are the leaves hashed as ``merkle.subtree_pieces`` of them. An empty
    run (a range with no rows) has ``start`` -1.
    """

    start: int
    positions: array[int]
    hashes: bytes
    pieces: list[tuple[int, bytes]]

    @property
    def count(self) -> int:
        return len(self.positions)

    def entry(self, seq: int) -> tuple[int, bytes]:
        """(position, stored hash) of the row of sequence ``seq``."""
        i = seq - self.start
        return self.positions[i], self.hashes[i * HASH_LEN : (i + 1) * HASH_LEN]


EMPTY_RUN: Final = LeafRun(-1, array("q"), b"", [])


class Handover(Struct, frozen=True):
    """What a range's rows tell the passes after step 2, so that they need not read
    the log again: its ``LeafRun`` (tree, heads) and its ``StreamEnds`` (versions);
    either is None when the rows cannot make one (such a log has findings anyway;
    the caller then reads for itself, as it always did)."""

    leaves: LeafRun | None
    streams: StreamEnds | None


class Collector:
    """Collects a ``Handover`` from verifier rows (``verify.Row``) fed page by page.

    A ``LeafRun`` needs every row to have an integer sequence, one more than the row
    before, and a 32-byte hash."""

    def __init__(self, cut: int | None = None) -> None:
        self._cut = cut
        self._reset()

    def _reset(self) -> None:
        self._seqs: array[int] = array("q")
        self._positions: array[int] = array("q")
        self._hashes: list[bytes] = []
        self._blobs: list[bytes] = []
        self._leaves_ok = True
        self._streams = StreamEnds()
        self.rows = 0
        """Rows fed since the last ``take``."""

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """The next page of rows, in position order."""
        self.rows += len(rows)
        self._streams.feed(rows)
        if self._leaves_ok and rows:
            self._leaves_ok = self._add_leaves(rows)

    def _add_leaves(self, rows: Sequence[tuple[Any, ...]]) -> bool:
        hashes = [r[7] for r in rows]
        try:
            seqs = array("q", [r[5] for r in rows])
            positions = array("q", [r[0] for r in rows])
            blob = b"".join(hashes)
        except (TypeError, OverflowError):
            return False
        if set(map(len, hashes)) != {HASH_LEN}:
            return False
        self._seqs.extend(seqs)
        self._positions.extend(positions)
        self._hashes.extend(hashes)
        self._blobs.append(blob)
        return True

    def take(self) -> Handover:
        """What the rows fed since the last ``take`` tell (and start afresh)."""
        streams = self._streams if self._streams.ok else None
        leaves = self._leaf_run() if self._leaves_ok else None
        self._reset()
        return Handover(leaves, streams)

    def _leaf_run(self) -> LeafRun | None:
        seqs = self._seqs
        if not seqs:
            return EMPTY_RUN
        start = seqs[0]
        if seqs != array("q", range(start, start + len(seqs))):
            return None
        pieces = subtree_pieces(start, self._hashes, self._cut)
        return LeafRun(start, self._positions, b"".join(self._blobs), pieces)


def check_range_rows(
    store: EventStore,
    checker: RangeChecker,
    span: tuple[int, int],
    page: int = SCAN_PAGE,
    sink: Sink | None = None,
) -> Iterator[int]:
    """Feed the rows ``after < position <= upto`` of ``span = (after, upto)`` to
    ``checker`` (and then to ``sink``, if given); yields rows per query.

    Each query covers a window of at most ``page`` positions, so it is a short index
    range scan whatever the planner believes about the table (PostgreSQL right after
    a bulk load has no statistics); an empty window jumps to the next position.
    """
    after, upto = span
    while after < upto:
        window = min(upto, after + page)
        rows = store.scan(after=after, upto=window, limit=page)
        if rows:
            checker.feed(rows)
            if sink is not None:
                sink(rows)
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
    with closing(InProcesses(task, top, jobs, progress)) as ranges:
        for lo, hi, result, _ in ranges:
            yield lo, hi, result


class InProcesses:
    """Range results (with each range's ``Handover`` when ``task.handover``, else None)
    in position order, checked by ``jobs`` spawned processes.

    The processes start, and the first ranges are queued, as soon as this is made, so
    the caller can read what it needs meanwhile; ``close`` (always call it) stops them.
    """

    def __init__(self, task: RangeTask, top: int, jobs: int, progress: Progress) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=workers.context(),
            initializer=_start_worker,
            initargs=(task,),
        )
        self._ranges = bounds(top, task.range_size)
        self._window: deque[tuple[int, int, Future[tuple[RangeResult, Handover | None]]]]
        self._window = deque()
        self._in_flight = IN_FLIGHT_PER_JOB * jobs
        self._progress = progress
        try:
            self._fill()
        except BrokenProcessPool as exc:
            self.close()
            raise StoreError(f"a verification worker process died: {exc}") from exc

    def _fill(self) -> None:
        while len(self._window) < self._in_flight:
            lo_hi = next(self._ranges, None)
            if lo_hi is None:
                return
            self._window.append((*lo_hi, self._pool.submit(_worker, *lo_hi)))

    def __iter__(self) -> Iterator[Checked]:
        try:
            while self._window:
                yield _done(*self._window.popleft(), self._progress)
                self._fill()
        except BrokenProcessPool as exc:
            raise StoreError(f"a verification worker process died: {exc}") from exc

    def close(self) -> None:
        """Stop the processes (ranges not started are dropped); waits for them."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _done(
    lo: int,
    hi: int,
    future: Future[tuple[RangeResult, Handover | None]],
    progress: Progress,
) -> Checked:
    result, handover = future.result()
    if progress:
        progress(result.count)
    return lo, hi, result, handover


_WORKER: dict[str, Any] = {}


def _start_worker(task: RangeTask) -> None:
    """Runs once in each spawned process: open the store by URL, build the key ring."""
    _WORKER["store"] = open_store(task.url, synchronous=task.synchronous, read_only=True)
    _WORKER["ring"] = build_keyring(task.key_records)
    _WORKER["task"] = task


def _worker(lo: int, hi: int) -> tuple[RangeResult, Handover | None]:
    """Runs in a worker process: check one range on its own and hand back the findings
    (and, when asked, the range's ``Handover``)."""
    task: RangeTask = _WORKER["task"]
    checker = RangeChecker(
        _WORKER["ring"], quick=task.quick, link_first=False, max_findings=task.max_findings
    )
    collector = Collector(task.tree_at) if task.handover else None
    sink = None if collector is None else collector.add
    for _ in check_range_rows(_WORKER["store"], checker, (lo, hi), task.page, sink):
        pass
    return checker.result, None if collector is None else collector.take()
