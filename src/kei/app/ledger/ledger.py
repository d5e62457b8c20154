"""The ledger: kei's public, embeddable face over one event store and one signing key.

Appends seal (sign) every event outside the store's lock, then hand the batch to the
store, which links it into the chain in one transaction: a batch lands whole or not
at all. Only small batches on streams this ledger has not written yet, and retries
after a version clash, are sealed inside the lock (see ``Ledger.append``). Reads return ``RecordedEvent`` views of the raw bytes; ``verify`` re-checks
every byte (see ``app/ledger/verification.py``).

The signing key is checked against a cached key registry, and every append
transaction checks, under the store's write lock, that the ``kei.keys`` stream still
ends where that registry was folded (one index probe per batch): a key another
process revoked meanwhile signs nothing more (``KeysChangedError``, refold, check).

Example::

    from kei import Ledger, NewEvent, AgentForked

    with Ledger.open("sqlite:///tmp/ledger.db", key=key) as ledger:
        ledger.append([NewEvent("agent-1", AgentForked(agent_id="agent-1", branch="main"))])
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from kei.adapters.files.leaks import shipped_matrix
from kei.adapters.files.pins import Identity, Pin, identity_findings
from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import PendingRecord, iter_all
from kei.adapters.workers.parallel_signer import ParallelSigner
from kei.adapters.workers.verify_pool import Progress
from kei.app.ledger.appending import (
    BatchSigner,
    KnownEnds,
    NewEvent,
    SealedBatch,
    first_versions,
    seal_batch,
    starts,
)
from kei.app.ledger.checkpointing import sign_now
from kei.app.ledger.leak_guard import guard_batch
from kei.app.ledger.retrying import RetryPolicy, retry_write
from kei.app.ledger.verification import VerifyReport, verify_store
from kei.domain import events
from kei.domain.events.limits import check_batch
from kei.domain.leaks.matrix import Matrix
from kei.domain.log.heads import HeadSigner, head_signer
from kei.domain.log.identity import key_matcher
from kei.domain.log.keyring import KeyRing, build_keyring
from kei.domain.log.keys import SigningKey
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord
from kei.errors import (
    ConcurrencyError,
    InputError,
    KeiError,
    KeysChangedError,
    LedgerStateError,
    StoreNotInitialisedError,
)
from kei.limits import LIMITS

__all__ = ["Ledger", "NewEvent"]

log = logging.getLogger(__name__)
SMALL_BATCH = 4


def _now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """One signed, hash-chained log on one store."""

    def __init__(
        self,
        store: EventStore,
        *,
        key: SigningKey | None = None,
        clock: Callable[[], datetime] = _now,
        parallel_signing: bool = False,
        leaks: Matrix | None = None,
        retry: RetryPolicy | None = None,
        checkpoint_state: Path | None = None,
    ) -> None:
        self.store = store
        self._checkpoint_state = checkpoint_state
        self.retry = retry if retry is not None else RetryPolicy()
        self._leaks = leaks if leaks is not None else shipped_matrix()
        self._parallel = parallel_signing
        self._parallel_signer: ParallelSigner | None = None
        self.key = key
        self._clock = clock
        self._keyring: KeyRing | None = None
        self._keys_version = 0  # the kei.keys stream's end that _keyring was folded from
        self._ends = KnownEnds()
        self._worker_url: str | None = None  # the URL as given (store.url hides passwords)
        self._synchronous = "FULL"

    @classmethod
    def open(
        cls,
        url: str,
        *,
        key: SigningKey | None = None,
        create: bool = False,
        synchronous: str = "FULL",
        clock: Callable[[], datetime] = _now,
        parallel_signing: bool = False,
        leaks: Matrix | None = None,
        read_only: bool = False,
        retry: RetryPolicy | None = None,
        checkpoint_state: Path | None = None,
    ) -> Ledger:
        """Open the ledger at ``url``; ``create`` makes the store (not the genesis);
        ``read_only`` opens a SQLite file so nothing can be written (``open_store``).

        ``parallel_signing`` signs batches of 32 events or more on two cores, half
        of them in a helper process (``adapters/workers/parallel_signer.py``). ``leaks`` is
        the leak matrix every append scans free text with (``app/ledger/leak_guard.py``);
        None means the rules shipped with kei, ``Matrix(())`` none at all. ``retry``
        is the budget of every write that loses a race (``app/ledger/retrying.py``),
        which the services built on this ledger use too. ``checkpoint_state`` is
        the folder where ``checkpoint`` remembers the last checkpoint it signed, so the
        next one checks only the events appended since (None: always the whole log).
        """
        store = open_store(url, create=create, synchronous=synchronous, read_only=read_only)
        if create:
            store.create()
        elif not store.is_created():
            store.close()
            raise StoreNotInitialisedError(
                f"{store.url} holds no kei ledger", hint="run `kei init`"
            )
        ledger = cls(
            store,
            key=key,
            clock=clock,
            parallel_signing=parallel_signing,
            leaks=leaks,
            retry=retry,
            checkpoint_state=checkpoint_state,
        )
        ledger._worker_url, ledger._synchronous = url, synchronous
        return ledger

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._parallel_signer is not None:
            self._parallel_signer.close()
        self.store.close()

    # -- keys and identity ---------------------------------------------------

    def keyring(self, *, refresh: bool = False) -> KeyRing:
        """The key registry folded from the log's key events (cached)."""
        if self._keyring is None or refresh:
            records = sorted(self.store.read_stream(events.SYSTEM_STREAM), key=_by_position)
            self._keyring = build_keyring(records)
            self._keys_version = max((r.version for r in records), default=0)
        return self._keyring

    @property
    def ledger_id(self) -> str:
        ring = self.keyring()
        if ring.ledger_id is None:
            raise self._no_genesis()
        return ring.ledger_id

    def _no_genesis(self) -> LedgerStateError:
        """Tell an empty store (init it) from one whose genesis does not verify."""
        if self.store.read_stream(events.SYSTEM_STREAM):
            return LedgerStateError(
                f"the genesis event in {self.store.url} does not verify",
                hint="run `kei verify-chain` to see what changed",
            )
        return LedgerStateError(f"{self.store.url} has no genesis event", hint="run `kei init`")

    def is_initialised(self) -> bool:
        return self.keyring(refresh=True).genesis_position is not None

    def init(self, name: str = "kei") -> RecordedEvent:
        """Append the genesis event naming this ledger and its first key."""
        key = self._signer()
        genesis = events.LedgerGenesis(
            ledger_id=str(uuid.uuid4()),
            name=name,
            key_id=key.key_id_hex,
            public_key=key.public_key.hex(),
            key_name=key.name,
            signed_heads=True,
        )
        check_batch([NewEvent(events.SYSTEM_STREAM, genesis, 0)])  # e.g. the key's name
        batch, _ = guard_batch([NewEvent(events.SYSTEM_STREAM, genesis, 0)], self._leaks)
        try:
            recorded = self._append_once(batch, key, 0, new_ledger=genesis.ledger_id)
        except (ConcurrencyError, KeysChangedError):
            raise LedgerStateError(
                f"a ledger already exists in {self.store.url}", hint="nothing was changed"
            ) from None
        self._keyring = None
        return recorded[0]

    def add_key(self, new_key: SigningKey) -> RecordedEvent:
        """Register ``new_key``, vouched for by this ledger's signing key."""
        return retry_write(self.retry, lambda: self._add_key(new_key), what="the key registry")

    def _add_key(self, new_key: SigningKey) -> RecordedEvent:
        if new_key.key_id in self.keyring(refresh=True).keys:
            raise LedgerStateError(f"key {new_key.key_id_hex} is already registered")
        payload = events.KeyAdded(
            key_id=new_key.key_id_hex, public_key=new_key.public_key.hex(), name=new_key.name
        )
        return self._append_system(payload)

    def revoke_key(self, key_id: str, reason: str) -> RecordedEvent:
        """Revoke a key for every later event; refuses to revoke the last active key.

        Appended at the registry's version, so two revocations racing for the last
        two active keys cannot both pass that rule: the second re-decides and fails.
        """
        return retry_write(
            self.retry, lambda: self._revoke_key(key_id, reason), what="the key registry"
        )

    def _revoke_key(self, key_id: str, reason: str) -> RecordedEvent:
        ring = self.keyring(refresh=True)
        entry = ring.keys.get(bytes.fromhex(key_id)) if _is_key_id(key_id) else None
        if entry is None:
            raise InputError(f"no key {key_id!r} in this ledger", hint="see `kei keys list`")
        if entry.revoked_at is not None:
            raise LedgerStateError(
                f"key {key_id} was already revoked at position {entry.revoked_at}"
            )
        if not reason.strip():
            raise InputError("a revocation needs a reason", hint="pass --reason TEXT")
        if [k for k in ring.active_keys() if k.key_id != entry.key_id] == []:
            raise LedgerStateError(
                f"key {key_id} is the last active key", hint="add another key before revoking it"
            )
        return self._append_system(events.KeyRevoked(key_id=key_id, reason=reason))

    def _append_system(self, payload: events.Payload) -> RecordedEvent:
        """Append at the version the registry was just folded from (strict)."""
        batch = [NewEvent(events.SYSTEM_STREAM, payload, self._keys_version)]
        try:
            result = self.append(batch)
        finally:
            self._keyring = None
        return result[0]

    def _signer(self) -> SigningKey:
        if self.key is None:
            raise LedgerStateError("no signing key loaded", hint="pass --key or set KEI_KEY")
        return self.key

    def check_signer(self, key: SigningKey) -> None:
        """Raise LedgerStateError unless ``key`` is registered and not revoked."""
        ring = self.keyring()
        if ring.genesis_position is None:
            ring = self.keyring(refresh=True)
        if ring.genesis_position is None:
            raise self._no_genesis()
        entry = ring.keys.get(key.key_id) or self.keyring(refresh=True).keys.get(key.key_id)
        if entry is None:
            raise LedgerStateError(
                f"key {key.key_id_hex} ({key.name}) is not registered in this ledger",
                hint="register this key file with `kei keys import FILE --key ACTIVE_KEY`, "
                "or pick another with --key",
            )
        if entry.revoked_at is not None:
            raise LedgerStateError(
                f"key {key.key_id_hex} ({key.name}) was revoked at position {entry.revoked_at}",
                hint="sign with another key (--key NAME)",
            )

    # -- appending -----------------------------------------------------------

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
        strings = check_batch(new_events)  # every field within its limits (domain/events/limits.py)
        guarded, mine = guard_batch(new_events, self._leaks, strings)  # refuses secrets
        return self._append(guarded)[:mine]

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
            sealed.pending, (events.SYSTEM_STREAM, keys_at), self._head_signer(key, new_ledger)
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

    def _head_signer(self, key: SigningKey, new_ledger: str | None = None) -> HeadSigner | None:
        """What signs each append transaction's head (``kei.domain.log.heads``): only for
        ledgers whose genesis declares signed heads, or for the genesis of
        ``new_ledger`` (whose head it signs itself)."""
        if new_ledger is not None:
            return head_signer(new_ledger, key.key_id, key.sign)
        ring = self.keyring()
        if not ring.signed_heads or ring.ledger_id is None:
            return None
        return head_signer(ring.ledger_id, key.key_id, key.sign)

    def _batch_signer(self, key: SigningKey) -> BatchSigner:
        """``key`` itself, or a two-core signer for it when ``parallel_signing`` is on."""
        if not self._parallel:
            return key
        if self._parallel_signer is None or self._parallel_signer.key is not key:
            if self._parallel_signer is not None:
                self._parallel_signer.close()
            self._parallel_signer = ParallelSigner(key)
        return self._parallel_signer

    def _timestamp_us(self) -> int:
        return int(self._clock().timestamp() * 1_000_000)

    # -- reading -------------------------------------------------------------

    def read(self, *, after: int = 0, limit: int | None = None) -> Iterator[RecordedEvent]:
        """Events after position ``after``, in log order, streamed page by page."""
        for n, record in enumerate(iter_all(self.store, after=after)):
            if limit is not None and n >= limit:
                return
            yield RecordedEvent.from_record(record)

    def read_stream(self, stream: str) -> list[RecordedEvent]:
        return [RecordedEvent.from_record(r) for r in self.store.read_stream(stream)]

    def last(self, n: int) -> list[RecordedEvent]:
        return [RecordedEvent.from_record(r) for r in self.store.last(n)]

    def checkpoint(self) -> str:
        """A signed C2SP checkpoint of the whole log as it is now: its Merkle tree root,
        recomputed from the chain (never from stored tree hashes).

        The log is checked first (``--quick``: links and hashes): a checkpoint vouches
        for what it covers, so kei refuses to sign over a log with findings. With a
        ``checkpoint_state`` folder (``Ledger.open``) only what was appended since the
        last checkpoint signed here is checked (``app/ledger/checkpointing.py``).
        """
        url = self._worker_url or self.store.url
        return sign_now(self, self._signer(), self._checkpoint_state, url)

    def genesis_key(self, *, refresh: bool = True) -> bytes | None:
        """The public key the genesis event introduced (None: no valid genesis);
        ``refresh=False`` reads it from the key registry as last folded."""
        ring = self.keyring(refresh=refresh)
        return next(
            (e.public_key for e in ring.keys.values() if e.added_at == ring.genesis_position),
            None,
        )

    def identity(self) -> Identity:
        """What the log says it is: its genesis ledger id and key (None where the
        genesis does not verify; ``verify`` reports that as a finding)."""
        try:
            ledger_id = self.keyring(refresh=True).ledger_id
            return Identity(ledger_id, self.genesis_key(refresh=False))
        except KeiError:
            return Identity(None, None)

    def verify(
        self,
        *,
        jobs: int = 1,
        quick: bool = False,
        checkpoint: str | None = None,
        progress: Progress = None,
        pin: Pin | None = None,
        expect_ledger: str | None = None,
        expect_key: str | None = None,
    ) -> VerifyReport:
        """Re-check every stored byte; see ``kei.app.ledger.verification``.

        The genesis is also checked against every outside value given (``pin-mismatch``
        findings): ``pin`` (``adapters/pins.read_pin``), ``expect_ledger`` (a ledger id),
        ``expect_key`` (a verifier key, fingerprint, public key or key id; see
        ``kei.domain.log.identity.key_matcher``) and the ``checkpoint``'s ``kei-genesis`` line.
        """
        matcher = None if expect_key is None else _key_matcher(expect_key)
        report = verify_store(
            self.store,
            jobs=jobs,
            quick=quick,
            checkpoint_text=checkpoint,
            progress=progress,
            url=self._worker_url,
            synchronous=self._synchronous,
        )
        if pin is None and expect_ledger is None and matcher is None and checkpoint is None:
            return report
        report.add(
            identity_findings(
                self.identity(),
                pin=pin,
                expect_ledger=expect_ledger,
                expect_key=matcher,
                checkpoint_text=checkpoint,
            )
        )
        return report


def _key_matcher(spec: str) -> str:
    try:
        return key_matcher(spec)
    except ValueError as exc:
        raise InputError(
            f"expected genesis key: {exc}", hint="see `kei keys export --vkey`"
        ) from None


def _is_key_id(text: str) -> bool:
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text)


def _by_position(record: StoredRecord) -> int:
    return record.position
