"""Worker processes that check a bundle's rows while replay reads, stages and folds them.

``verify-chain``'s workers read their ranges from the store (``verify_pool.py``).
Replay's rows are in the main process already, fresh from the bundle, so a range is
sent as the frames it was read from: one copy of bytes, where pickling the rows would
cost the main process (which also stages and folds them) about 1.5 µs a row. The
worker decodes the frames again and checks the rows.

- ``jobs`` processes, started from ``workers.context()`` ("spawn": nothing inherited;
  they die with this process), each with its own task
  queue, bounded to ``DEPTH`` waiting ranges: memory stays flat, a reader that runs
  ahead blocks and leaves its core to the workers, and what is still queued when the
  reader is done covers the digests it takes meanwhile (two ranges did not);
- ranges go round-robin, so the oldest range in flight is always at the worker
  ``_order`` names first, and results come back in submission order;
- each range is checked "floating" (``RangeChecker(link_first=False)``); the caller
  joins the edges;
- key events reach each worker once: a task carries only the key records that worker
  has not seen. A ring folded from the key events up to a range's end judges every
  event in the range as the ring at the head does (keys added later are not yet
  valid there, revocations later do not reach back);
- a worker that dies, or fails, is a ``StoreError`` within ``POLL_S``;
- each task pipe is widened to ``PIPE_BYTES`` where the system allows: a range is a
  few MB, and through the default 64 KiB pipe it costs both ends a system call and a
  wake-up per 64 KiB (about 1 CPU-s for a million events).
"""

from __future__ import annotations

import contextlib
import fcntl
import queue
from collections import deque
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from types import TracebackType
from typing import Any, Final

from msgspec import Struct

from kei.adapters.workers import processes as workers
from kei.app.bundle.segments import FrameReader
from kei.domain.log.keyring import KeyRing
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import RangeChecker, RangeResult
from kei.errors import StoreError

DEPTH: Final = 4
PIPE_BYTES: Final = 1 << 20  # Linux's default limit for an unprivileged process
POLL_S: Final = 1.0
STOP_S: Final = 5.0

Task = tuple[list[StoredRecord], bytes] | None


class _Worker(Struct):
    process: BaseProcess
    tasks: Queue[Task]
    results: Queue[RangeResult | str]
    keys_sent: int = 0


class FrameVerifiers:
    """``jobs`` verification processes fed with frames; a context manager."""

    def __init__(self, jobs: int, *, max_frame: int, max_findings: int) -> None:
        ctx = workers.context()
        self._workers: list[_Worker] = []
        self._order: deque[_Worker] = deque()
        self._turn = 0
        try:
            for _ in range(jobs):
                tasks: Queue[Task] = ctx.Queue(DEPTH)
                _widen(tasks)
                results: Queue[RangeResult | str] = ctx.Queue()
                process = ctx.Process(
                    target=_serve,
                    args=(tasks, results, max_frame, max_findings),
                    name="kei-replay-verify",
                    daemon=True,
                )
                process.start()
                self._workers.append(_Worker(process, tasks, results))
        except BaseException:
            self.close(abort=True)
            raise

    def __enter__(self) -> FrameVerifiers:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(abort=e is not None)

    @property
    def in_flight(self) -> int:
        return len(self._order)

    def submit(self, keys: Sequence[StoredRecord], frames: bytes) -> None:
        """Send the next range (its frames) with the key records up to its end."""
        worker = self._workers[self._turn]
        self._turn = (self._turn + 1) % len(self._workers)
        task: Task = (list(keys[worker.keys_sent :]), frames)
        while True:
            try:
                worker.tasks.put(task, timeout=POLL_S)
                break
            except queue.Full:
                _check_alive(worker)
        worker.keys_sent = len(keys)
        self._order.append(worker)

    def ready(self) -> bool:
        """Has the oldest range in flight been checked?"""
        return bool(self._order) and not self._order[0].results.empty()

    def next_result(self) -> RangeResult:
        """The result of the oldest range in flight (waits for it)."""
        worker = self._order.popleft()
        while True:
            try:
                result = worker.results.get(timeout=POLL_S)
                break
            except queue.Empty:
                _check_alive(worker)
        if isinstance(result, str):
            raise StoreError(f"a verification worker failed: {result}")
        return result

    def close(self, *, abort: bool = False) -> None:
        """Stop the workers: let them finish (or, on ``abort``, kill them)."""
        for w in self._workers:
            if abort or not w.process.is_alive():
                w.tasks.cancel_join_thread()
            else:
                try:
                    w.tasks.put(None, timeout=STOP_S)
                except queue.Full:
                    w.tasks.cancel_join_thread()
        for w in self._workers:
            w.process.join(0 if abort else STOP_S)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join()
            w.tasks.close()
            w.results.close()
        self._workers.clear()
        self._order.clear()


def _widen(tasks: Queue[Task]) -> None:
    """Best effort: a pipe that cannot grow (another system, a lower limit) still works."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    reader = getattr(tasks, "_reader", None)  # the queue's pipe (CPython's attribute)
    if set_size is None or reader is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(reader.fileno(), set_size, PIPE_BYTES)


def _check_alive(worker: _Worker) -> None:
    if not worker.process.is_alive():
        code = worker.process.exitcode
        raise StoreError(f"a verification worker process died (exit code {code})")


def _serve(
    tasks: Queue[Task], results: Queue[RangeResult | str], max_frame: int, max_findings: int
) -> None:
    """Runs in a worker: check each range sent until told to stop (None)."""
    ring = KeyRing()
    while (task := tasks.get()) is not None:
        new_keys, frames = task
        for record in new_keys:
            ring.apply(record)
        results.put(_check(ring, frames, max_frame, max_findings))


def _check(ring: KeyRing, frames: bytes, max_frame: int, max_findings: int) -> Any:
    try:
        rows = FrameReader("range", max_frame=max_frame).feed(frames)
        checker = RangeChecker(ring, link_first=False, max_findings=max_findings)
        checker.feed(rows)
    except Exception as exc:  # sent back to the caller as a one-line StoreError
        return f"{type(exc).__name__}: {exc}"
    return checker.result
