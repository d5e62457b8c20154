"""The ledger's write path: every append sealed, guarded and linked in one transaction.

Appends seal (sign) every event outside the store's lock, then hand the batch to the
store, which links it into the chain in one transaction: a batch lands whole or not
at all. Only small batches on streams this ledger has not written yet, and retries
after a version clash, are sealed inside the lock (see ``WritingLedger.append``).
Every append transaction checks, under the store's write lock, that the ``kei.keys``
stream still ends where the key registry was folded (one index probe per batch): a key
another process revoked meanwhile signs nothing more (``KeysChangedError``, refold,
check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

from kei.adapters.files.leaks import shipped_matrix
from kei.adapters.store import EventStore
from kei.adapters.store.base import PendingRecord
from kei.app.closing import Closing
from kei.app.ledger.appending import (
    BatchSigner,
    KnownEnds,
    NewEvent,
    SealedBatch,
    first_versions,
    seal_batch,
    starts,
)
from kei.app.ledger.keyed import KeyedLedger
from kei.app.ledger.leak_guard import guard_batch
from kei.app.ledger.retrying import RetryPolicy, retry_write
from kei.app.ledger.riding import RIDER, Rider
from kei.domain import events
from kei.domain.events.limits import check_batch
from kei.domain.leaks.matrix import Matrix
from kei.domain.log.keys import SigningKey
from kei.domain.log.recorded import RecordedEvent
from kei.errors import ConcurrencyError, InputError, KeysChangedError
from kei.limits import LIMITS

if TYPE_CHECKING:  # loaded for the first large batch only, not for a hook's one event
    from kei.adapters.workers.parallel_signer import ParallelSigner

log = logging.getLogger(__name__)
SMALL_BATCH = 4


def now() -> datetime:
    return datetime.now(UTC)


class WriteOptions(TypedDict, total=False):
    """How a ledger signs and guards what it appends (see ``WritingLedger``)."""

    key: SigningKey | None
    clock: Callable[[], datetime]
    parallel_signing: bool
    leaks: Matrix | None
    retry: RetryPolicy | None


class WritingLedger(KeyedLedger, Closing):
    """Appends to one store, signed by ``key``, checked against the key registry.

    ``clock`` stamps each event; ``parallel_signing`` signs big batches on two cores;
    ``leaks`` is the matrix free text is scanned with (None: the rules shipped with
    kei); ``retry`` is the budget of every write that loses a race.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        key: SigningKey | None = None,
        clock: Callable[[], datetime] = now,
        parallel_signing: bool = False,
        leaks: Matrix | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(store, key)
        self.retry = retry if retry is not None else RetryPolicy()
        self._leaks = leaks if leaks is not None else shipped_matrix()
        self._parallel = parallel_signing
        self._parallel_signer: ParallelSigner | None = None
        self._clock = clock
        self._ends = KnownEnds()

    def close(self) -> None:
        if self._parallel_signer is not None:
            self._parallel_signer.close()
        self.store.close()

    def append(self, new_events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append events in one transaction; returns them as recorded.

        Streams without an ``expected_version`` are appended at their end; with one,
        a clash raises ConcurrencyError (only those streams are strict, also in a
        mixed batch), and nothing is appended. A signing key revoked since this
        ledger folded the key registry raises LedgerStateError, checked inside the
        append transaction. Signing happens outside the store's write
        lock; only when that optimistic attempt clashes (another writer took a
        version first) is the batch sealed again *inside* the lock, where the
        streams' ends cannot move, so busy shared streams cannot starve a writer.
        Batches of at most ``SMALL_BATCH`` events whose stream ends are not known
        yet go straight to the locked path: signing them there is cheaper than a
        version query before the transaction. Free text is scanned first: a secret
        refuses the batch, a redaction is recorded (``app/ledger/leak_guard.py``).
        """
        if not new_events:
            return []
        if len(new_events) > LIMITS.max_batch_events:
            raise InputError(
                f"a batch holds at most {LIMITS.max_batch_events} events, got {len(new_events)}"
            )
        rider = RIDER.get()
        mine = len(new_events)
        if rider is not None:
            new_events = [*new_events, *rider.events(new_events)]
        strings = check_batch(new_events)  # every field within its limits (domain/events/limits.py)
        guarded, ours = guard_batch(new_events, self._leaks, strings)  # refuses secrets
        recorded = self._append(guarded)
        if rider is not None and ours > mine:
            rider.landed(recorded[mine:ours])
        return recorded[:mine]

    @contextmanager
    def riding(self, rider: Rider) -> Iterator[Rider]:
        """Add ``rider``'s events to the batches appended in this block, in this thread
        or task only (``app/ledger/riding.py``)."""
        token = RIDER.set(rider)
        try:
            yield rider
        finally:
            RIDER.reset(token)

    def _append(self, new_events: Sequence[NewEvent]) -> list[RecordedEvent]:
        if len(new_events) > LIMITS.max_batch_events:
            raise InputError(
                f"a batch holds at most {LIMITS.max_batch_events} events with its leak notes"
            )
        key = self._signer()
        try:  # the hot path pays for no retry machinery
            return self._append_checked(new_events, key)
        except KeysChangedError:
            log.debug("%s moved since the key registry was folded; refolding", events.SYSTEM_STREAM)
        return retry_write(
            self.retry,
            lambda: self._append_checked(new_events, key),
            what=f"the key registry ({events.SYSTEM_STREAM})",
            on=KeysChangedError,
        )

    def _append_checked(
        self, new_events: Sequence[NewEvent], key: SigningKey
    ) -> list[RecordedEvent]:
        """One try: check the signer, append optimistically, on a clash under the lock.

        Only streams that carry ``expected_version`` are strict. A clash on a batch
        whose every stream is strict is the caller's (ConcurrencyError); in a mixed
        batch it may be on a stream without one, so the batch is redone under the
        store's write lock, which refuses it only if a strict stream moved.
        """
        self.check_signer(key)
        keys_at = self._keys_version
        first = first_versions(new_events)
        all_strict = None not in first.values()
        try:
            try:
                return self._append_once(new_events, key, keys_at, first, cached=not all_strict)
            except ConcurrencyError:
                self._ends.forget(first)
                if all_strict:
                    raise
            log.debug("stream version clash; appending again under the store's write lock")
            return self._append_locked(new_events, key, keys_at)
        except KeysChangedError:
            self._keyring = None  # refold before the next try, which checks the key again
            raise

    def _append_once(
        self,
        new_events: Sequence[NewEvent],
        key: SigningKey,
        keys_at: int,
        first: dict[str, int | None] | None = None,
        *,
        cached: bool = False,
        new_ledger: str | None = None,
    ) -> list[RecordedEvent]:
        """Seal every event, then hand the batch to the store in one transaction.

        This is the hot path (``bench/append_batch.py``): at most one version query
        for the whole batch, none for streams this ledger wrote last (``cached``).
        """
        if first is None:
            first = first_versions(new_events)
        known = self._ends.ends if cached else {}
        ends = {s: known[s] for s, v in first.items() if v is None and s in known}
        unknown = [s for s, v in first.items() if v is None and s not in ends]
        if unknown and len(new_events) <= SMALL_BATCH:
            # Signing a few events inside the lock costs less than a query before it.
            return self._append_locked(new_events, key, keys_at)
        if unknown:
            ends.update(self.store.stream_versions(unknown))
        signer = self._batch_signer(key)
        sealed = seal_batch(new_events, signer, starts(first, ends), self._timestamp_us())
        entries = self.store.append(
            sealed.pending,
            guard=(events.SYSTEM_STREAM, keys_at),
            sign_head=self._head_signer(key, new_ledger),
        )
        self._ends.remember(sealed.ends)
        return sealed.recorded(entries, key.key_id_hex)

    def _append_locked(
        self, new_events: Sequence[NewEvent], key: SigningKey, keys_at: int
    ) -> list[RecordedEvent]:
        """Read the ends, check the strict ones and the key registry's, seal and
        insert, all inside the store's write lock."""
        first = first_versions(new_events)
        done: list[SealedBatch] = []

        def build(stored: dict[str, int]) -> list[PendingRecord]:
            if stored.get(events.SYSTEM_STREAM, 0) != keys_at:
                raise KeysChangedError(f"{events.SYSTEM_STREAM} moved; nothing appended")
            for stream, expected in first.items():
                if expected is not None and stored.get(stream, 0) != expected:
                    raise ConcurrencyError(
                        f"stream {stream} is at version {stored.get(stream, 0)}, not at the "
                        f"expected_version {expected}: a stream version was taken by another "
                        "writer; nothing appended"
                    )
            ts = self._timestamp_us()
            done[:] = [seal_batch(new_events, self._batch_signer(key), starts(first, stored), ts)]
            return done[0].pending

        entries = self.store.append_locked(
            [*first, events.SYSTEM_STREAM], build, self._head_signer(key)
        )
        self._ends.remember(done[0].ends)
        return done[0].recorded(entries, key.key_id_hex)

    def _batch_signer(self, key: SigningKey) -> BatchSigner:
        """``key`` itself, or a two-core signer for it when ``parallel_signing`` is on."""
        if not self._parallel:
            return key
        if self._parallel_signer is None or self._parallel_signer.key is not key:
            if self._parallel_signer is not None:
                self._parallel_signer.close()
            from kei.adapters.workers.parallel_signer import ParallelSigner

            self._parallel_signer = ParallelSigner(key)
        return self._parallel_signer

    def _timestamp_us(self) -> int:
        return int(self._clock().timestamp() * 1_000_000)
