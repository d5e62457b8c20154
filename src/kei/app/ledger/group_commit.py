"""Group commit: the batches many threads append at once, signed and committed together.

A server (``kei serve``) runs each request's write on a thread of its own: the service
reads its streams, decides through the domain rules and appends its batch, as the CLI
does. Each such append costs one store transaction (and, on SQLite with ``FULL``
durability, one fsync), so a hundred clients appending one event each pay a hundred.
``GroupLedger`` hands every checked and guarded batch (``WritingLedger.append`` has run
the limits and the leak matrix on the caller's thread, so a refusal there is that
caller's alone) to one committer thread, which waits a short ``window`` for more, then
appends what came in as one batch: one transaction, one signed head. Each caller
returns only once its own events have committed, so an acknowledged write is durable.

What goes into one transaction: batches signed by the same key, on streams no other
batch of the group touches (a second write to one stream waits for the next group, so
two decisions about one agent never meet in one batch), at most ``max_events`` events.
When a group's transaction fails (a strict stream moved: another writer came first),
each half of it is appended again, and so on down to the one batch that fails alone,
so each caller gets its own answer, and a ``ConcurrencyError`` reaches only the caller
whose decision is stale (its service reads
and decides again, ``app/ledger/retrying.py``).

The key that signs a batch is the one its caller set with :func:`signing_as` (a server
signs each token's writes with the key bound to it), else the ledger's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from queue import Empty, SimpleQueue
from typing import Any, Final

from kei.adapters.store import EventStore
from kei.app.ledger.appending import NewEvent
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey
from kei.domain.log.recorded import RecordedEvent
from kei.limits import LIMITS

__all__ = ["COMMITTED", "GroupLedger", "signing_as"]

SIGNER: ContextVar[SigningKey | None] = ContextVar("kei_group_signer", default=None)
COMMITTED: ContextVar[list[RecordedEvent] | None] = ContextVar("kei_group_committed", default=None)
"""Where a caller collects every event its appends committed (set it to a list first)."""
_STOP: Final = object()


@contextmanager
def signing_as(key: SigningKey | None) -> Iterator[list[RecordedEvent]]:
    """Appends in this block (this thread) are signed by ``key`` (None: the ledger's);
    yields the list the events they commit are added to."""
    committed: list[RecordedEvent] = []
    key_token, list_token = SIGNER.set(key), COMMITTED.set(committed)
    try:
        yield committed
    finally:
        SIGNER.reset(key_token)
        COMMITTED.reset(list_token)


class _Pending:
    """One caller's batch, the key to sign it with, and the future it waits on."""

    __slots__ = ("batch", "future", "key", "streams")

    def __init__(self, batch: Sequence[NewEvent], key: SigningKey) -> None:
        self.batch, self.key = batch, key
        self.streams = frozenset(e.stream for e in batch)
        self.future: Future[list[RecordedEvent]] = Future()


class GroupLedger(Ledger):
    """A ledger whose appends, from any number of threads, commit in groups."""

    def __init__(
        self,
        store: EventStore,
        *,
        window: float = 0.002,
        max_events: int = 256,
        **options: Any,
    ) -> None:
        super().__init__(store, **options)
        self.window = window
        self.max_events = min(max_events, LIMITS.max_batch_events)
        self._queue: SimpleQueue[_Pending | object] = SimpleQueue()
        self._committing: SigningKey | None = None
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.groups = 0  # transactions committed with more than one caller's batch
        # how many callers may append now (a server's running writes): the committer
        # waits for no more than that; None: always the whole window
        self.writers: Callable[[], int] | None = None

    @classmethod
    def open_grouped(
        cls, url: str, *, window: float = 0.002, max_events: int = 256, **options: Any
    ) -> GroupLedger:
        """``Ledger.open`` (``options``: its keywords), grouping appends."""
        ledger = cls.open(url, **options)
        assert isinstance(ledger, GroupLedger)
        ledger.window, ledger.max_events = window, min(max_events, LIMITS.max_batch_events)
        return ledger

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        super().close()

    # -- the caller's side ---------------------------------------------------------------

    def _append(self, new_events: Sequence[NewEvent]) -> list[RecordedEvent]:
        if threading.current_thread() is self._thread:  # the committer itself
            return super()._append(new_events)
        pending = _Pending(new_events, SIGNER.get() or super()._signer())
        self._started().put(pending)
        recorded = pending.future.result()
        committed = COMMITTED.get()
        if committed is not None:
            committed.extend(recorded)
        return recorded

    def _signer(self) -> SigningKey:
        """The key of the group being committed, on the committer; else the ledger's."""
        committing = self._committing
        if committing is not None and threading.current_thread() is self._thread:
            return committing
        return super()._signer()

    def _started(self) -> SimpleQueue[_Pending | object]:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kei-group-commit", daemon=True
                )
                self._thread.start()
        return self._queue

    # -- the committer -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            taken = [first, *self._more(1)]
            stop = _STOP in taken
            for group in _groups([p for p in taken if isinstance(p, _Pending)], self.max_events):
                self._commit(group)
            if stop:
                return

    def _more(self, taken: int) -> list[_Pending | object]:
        """What else arrives within the window, without waiting past it, nor once every
        writer that may still append (``writers``) has."""
        import time

        more: list[_Pending | object] = []
        deadline = time.monotonic() + self.window
        writers = self.writers
        while (left := deadline - time.monotonic()) > 0:
            if writers is not None and taken + len(more) >= writers():
                break
            try:
                more.append(self._queue.get(timeout=left))
            except Empty:
                break
        return more

    def _commit(self, group: list[_Pending]) -> None:
        """One transaction for the group; when it fails, each half again (a stale
        batch among many costs a few transactions, not one per batch), down to the
        batch whose own error is its caller's."""
        joined = [e for p in group for e in p.batch]
        try:
            recorded = self._as(group[0].key, joined)
        except BaseException as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            half = len(group) // 2
            self._commit(group[:half])
            self._commit(group[half:])
            return
        self.groups += len(group) > 1
        at = 0
        for p in group:
            p.future.set_result(recorded[at : at + len(p.batch)])
            at += len(p.batch)

    def _as(self, key: SigningKey, batch: Sequence[NewEvent]) -> list[RecordedEvent]:
        self._committing = key
        try:
            return super()._append(batch)
        finally:
            self._committing = None


def _groups(pending: list[_Pending], max_events: int) -> list[list[_Pending]]:
    """Consecutive runs of batches with one key, disjoint streams, within ``max_events``:
    arrival order is kept, so a caller's later batch never commits before its earlier."""
    groups: list[list[_Pending]] = []
    streams: set[str] = set()
    size = 0
    for p in pending:
        current = groups[-1] if groups else None
        fits = (
            current is not None
            and p.key is current[0].key
            and streams.isdisjoint(p.streams)
            and size + len(p.batch) <= max_events
        )
        if current is not None and fits:
            current.append(p)
            streams |= p.streams
            size += len(p.batch)
        else:
            groups.append([p])
            streams, size = set(p.streams), len(p.batch)
    return groups
