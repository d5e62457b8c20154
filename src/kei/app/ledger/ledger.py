"""The ledger: kei's public, embeddable face over one event store and one signing key.

Built in three layers, one job each: the key registry (``app/ledger/keyed.py``: which
keys may sign), the write path (``app/ledger/writing.py``: every append sealed, guarded
and linked into the chain in one transaction, a batch whole or not at all) and this
class, which opens the store, reads, follows, verifies and checkpoints the log and
registers or revokes keys. Reads return ``RecordedEvent`` views of the raw bytes;
``follow`` hands over only events whose links and hashes check
(``kei.adapters.store.follow``); ``verify`` re-checks every byte (see
``app/ledger/verification.py``).

Example::

    from kei import Ledger, NewEvent, AgentForked

    with Ledger.open("sqlite:///tmp/ledger.db", key=key) as ledger:
        ledger.append([NewEvent("agent-1", AgentForked(agent_id="agent-1", branch="main"))])
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import iter_all
from kei.adapters.store.urls import StoreURL
from kei.app.ledger.appending import NewEvent
from kei.app.ledger.leak_guard import guard_batch
from kei.app.ledger.retrying import retry_write
from kei.app.ledger.writing import WriteOptions, WritingLedger
from kei.domain import events
from kei.domain.events.limits import check_batch
from kei.domain.log.keys import SigningKey
from kei.domain.log.recorded import RecordedEvent
from kei.errors import (
    ConcurrencyError,
    InputError,
    KeysChangedError,
    LedgerStateError,
    StoreNotInitialisedError,
)

# Verifying, checkpointing and following load their modules when called: a write
# (a hook's ``kei agent fork``) needs none of them.
if TYPE_CHECKING:
    from kei.adapters.files.pins import Pin
    from kei.adapters.store.follow import LogFollower
    from kei.adapters.workers.verify_pool import Progress
    from kei.app.ledger.verification import VerifyReport
    from kei.domain.log.verify import Link

__all__ = ["Ledger", "NewEvent"]


class Ledger(WritingLedger):
    """One signed, hash-chained log on one store."""

    def __init__(
        self,
        store: EventStore,
        *,
        checkpoint_state: Path | None = None,
        **options: Unpack[WriteOptions],
    ) -> None:
        super().__init__(store, **options)
        self._checkpoint_state = checkpoint_state
        self._url: StoreURL | None = (
            None  # the URL as given, parsed once (store.url hides passwords)
        )
        self._synchronous = "FULL"

    @property
    def url(self) -> StoreURL:
        """The store's URL as given to ``open``, parsed once (``.text`` keeps the password,
        if it has one: for read models and worker processes, never for messages, which
        use ``store.url`` or ``.redacted``); a ledger built on a store directly has only
        the store's own URL."""
        return self._url or StoreURL.parse(self.store.url)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = False,
        synchronous: str = "FULL",
        read_only: bool = False,
        checkpoint_state: Path | None = None,
        **options: Unpack[WriteOptions],
    ) -> Ledger:
        """Open the ledger at ``url``; ``create`` makes the store (not the genesis);
        ``read_only`` opens a SQLite file so nothing can be written (``open_store``).

        ``options`` are how appends are signed and guarded (``WriteOptions``): ``key``
        signs them, ``clock`` stamps them, ``parallel_signing`` signs batches of 32
        events or more on two cores, half of them in a helper process
        (``adapters/workers/parallel_signer.py``), ``leaks`` is the leak matrix every
        append scans free text with (``app/ledger/leak_guard.py``; None means the rules
        shipped with kei, ``Matrix(())`` none at all) and ``retry`` is the budget of
        every write that loses a race (``app/ledger/retrying.py``), which the services
        built on this ledger use too. ``checkpoint_state`` is the folder where
        ``checkpoint`` remembers the last checkpoint it signed, so the next one checks
        only the events appended since (None: always the whole log).
        """
        location = StoreURL.parse(url)
        store = open_store(location, create=create, synchronous=synchronous, read_only=read_only)
        if create:
            store.create()
        elif not store.is_created():
            store.close()
            raise StoreNotInitialisedError(
                f"{store.url} holds no kei ledger", hint="run `kei init`"
            )
        ledger = cls(store, checkpoint_state=checkpoint_state, **options)
        ledger._url, ledger._synchronous = location, synchronous
        return ledger

    # -- keys ----------------------------------------------------------------

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

    # -- reading -------------------------------------------------------------

    def read(self, *, after: int = 0, limit: int | None = None) -> Iterator[RecordedEvent]:
        """Events after position ``after``, in log order, streamed page by page."""
        for n, record in enumerate(iter_all(self.store, after=after)):
            if limit is not None and n >= limit:
                return
            yield RecordedEvent.from_record(record)

    def follow(self, after: Link | None = None, *, upto: int | None = None) -> LogFollower:
        """A reader of the events after ``after`` (None: the whole log), up to ``upto``,
        that hands over only what links to what it handed over before and stops at the
        first break (``kei.adapters.store.follow``).

        Example::

            follower = ledger.follow()
            for page in follower.pages():
                ...  # verified StoredRecords, in log order
            if follower.broken is not None:
                raise follower.error("my reader")
        """
        from kei.adapters.store.follow import LogFollower

        return LogFollower(self.store, after, upto=upto)

    def read_stream(self, stream: str) -> list[RecordedEvent]:
        return [RecordedEvent.from_record(r) for r in self.store.read_stream(stream)]

    def read_stream_checked(
        self, stream: str, upto_version: int | None = None
    ) -> list[RecordedEvent]:
        """``read_stream`` for a write to decide from: every row's chain entry, hash,
        signature and version checked first (``app/ledger/checked_reads.py``); with
        ``upto_version``, the stream's first rows only."""
        from kei.app.ledger.checked_reads import checked_stream

        return checked_stream(self, stream, upto_version)

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
        from kei.app.ledger.checkpointing import sign_now

        return sign_now(self, self._signer(), self._checkpoint_state)

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
        from kei.adapters.files.pins import identity_findings
        from kei.app.ledger.verification import verify_store

        matcher = None if expect_key is None else _key_matcher(expect_key)
        report = verify_store(
            self.store,
            jobs=jobs,
            quick=quick,
            checkpoint_text=checkpoint,
            progress=progress,
            url=None if self._url is None else self._url.text,
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
    from kei.domain.log.identity import key_matcher

    try:
        return key_matcher(spec)
    except ValueError as exc:
        raise InputError(
            f"expected genesis key: {exc}", hint="see `kei keys export --vkey`"
        ) from None


def _is_key_id(text: str) -> bool:
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text)
