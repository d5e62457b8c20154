"""The server's ledgers and the threads that use them, so the event loop never blocks.

- **Reads** run on one thread with one ``Services`` (``app/services.py``), whose read
  models stay open and only catch up with what is new, over a ledger that never
  appends (``reader``).
- **Writes** run on a pool of threads, each with its own ``Services`` (read models are
  used by one thread at a time, as each CLI process uses its own), over one
  ``GroupLedger`` (``app/ledger/group_commit.py``): their appends commit in groups, and
  each returns once its own events have committed.
- **Log pages**, the token check and verification run on anyio's worker threads.

A commit wakes the live streams (``Wakeup``) so an event reaches SSE clients at once;
writers in other processes are seen by the streams' polling.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from msgspec import Struct, field

from kei.adapters.http.verified import VerifyCache
from kei.app.ledger.group_commit import GroupLedger, signing_as
from kei.app.ledger.ledger import Ledger
from kei.app.ledger.retrying import RetryPolicy
from kei.app.services import Services

if TYPE_CHECKING:
    from pathlib import Path

    from kei.domain.catalog.catalog import Catalog
    from kei.domain.log.keys import SigningKey
    from kei.domain.log.recorded import RecordedEvent

T = TypeVar("T")


class Store(Struct, frozen=True, kw_only=True):
    """Where the log is and how the server signs, seals and retries (as the CLI does)."""

    url: str
    key: SigningKey | None
    key_for: Callable[[str], SigningKey] | None = None  # a token's key_id -> its key
    seal_key: bytes | None = None
    catalog: Catalog
    synchronous: str = "FULL"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    checkpoint_state: Path | None = None
    window: float = 0.002  # group commit: how long the committer waits for more
    write_threads: int = 64
    reverify: float = 600.0  # seconds between whole new verification passes (0: never)


class Wakeup:
    """Tells the live streams of this event loop that something was committed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def notify(self) -> None:
        """From any thread."""
        self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        """Until the next commit, or ``timeout`` seconds."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class Backend:
    """The ledgers, services and threads of one server (open within its lifespan)."""

    def __init__(self, store: Store, clock_us: Callable[[], int]) -> None:
        self.store, self.clock_us = store, clock_us
        options: dict[str, Any] = {"synchronous": store.synchronous, "retry": store.retry}
        self.writer = GroupLedger.open_grouped(
            store.url, window=store.window, key=store.key, **options
        )
        self.reader = Ledger.open(
            store.url, key=store.key, checkpoint_state=store.checkpoint_state, **options
        )
        self._running = 0  # writes between their start and their answer
        self._counting = threading.Lock()
        self.writer.writers = lambda: self._running
        self.verify = VerifyCache(self.reader, every=store.reverify)
        self.wakeup = Wakeup()
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="kei-serve-read")
        self._writes = ThreadPoolExecutor(store.write_threads, thread_name_prefix="kei-serve-write")
        self._read_services = Services(self.reader, store.catalog, seal_key=store.seal_key)
        self._local = threading.local()
        self._opened: list[Services] = [self._read_services]
        self._opening = threading.Lock()
        self._checkpoint: tuple[int, str] | None = None

    def close(self) -> None:
        self._writes.shutdown(wait=True)
        self._reads.shutdown(wait=True)
        for services in self._opened:
            with suppress(Exception):  # a read model's connection made on another thread
                services.close()
        self.writer.close()
        self.reader.close()

    async def read(self, work: Callable[[Services], T]) -> T:
        """``work`` on the read thread, with the read services."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, work, self._read_services)

    async def blocking(self, work: Callable[[], T]) -> T:
        """Other blocking work (log pages, verification) on anyio's worker threads."""
        return await anyio.to_thread.run_sync(work)

    async def write(
        self, key_id: str | None, work: Callable[[Services], T]
    ) -> tuple[T, list[RecordedEvent]]:
        """``work`` on a write thread, its appends signed by the token's key; returns
        its answer and every event it committed, once committed."""
        key = None if key_id is None else self.key(key_id)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writes, self._write, key, work)
        finally:
            self.wakeup.notify()

    def _write(self, key: SigningKey | None, work: Callable[[Services], T]) -> tuple[T, list[Any]]:
        with self._counting:
            self._running += 1
        try:
            with signing_as(key) as committed:
                answer = work(self._services())
        finally:
            with self._counting:
                self._running -= 1
        return answer, committed

    def _services(self) -> Services:
        """This write thread's services (made on its first write)."""
        services: Services | None = getattr(self._local, "services", None)
        if services is None:
            services = Services(self.writer, self.store.catalog, seal_key=self.store.seal_key)
            self._local.services = services
            with self._opening:
                self._opened.append(services)
        return services

    def key(self, key_id: str) -> SigningKey:
        from kei.errors import LedgerStateError

        if self.store.key_for is None:
            raise LedgerStateError(
                f"this token signs with key {key_id}, which this server cannot load",
                hint="restart kei serve with that key's file under KEI_HOME/keys",
            )
        return self.store.key_for(key_id)

    def checkpoint(self) -> tuple[int, str]:
        """The latest checkpoint this server signed, signed anew when the log grew since
        (reads thread)."""
        head = self.reader.store.max_position()
        if self._checkpoint is None or self._checkpoint[0] != head:
            self._checkpoint = (head, self.reader.checkpoint())
        return self._checkpoint
