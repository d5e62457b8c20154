"""The append half both stores share: what a store asks of its chained recorder
(``ChainedRecorder``, a ``Batch`` at a time), and linking a batch into the chain
(``link_entries``, run under the lock).

Each store's recorder (``ChainedSQLiteRecorder``, ``ChainedPostgresRecorder``) does
the SQL and the chain under its write lock; ``SqlStore.append`` hands it the batch
and turns the driver's and the library's errors into kei's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from kei.adapters.store.base import Build, ChainEntry, Guard, PendingRecord
from kei.adapters.store.verbatim import Copier
from kei.domain.log.envelope import GENESIS_PREV, chain_hash
from kei.domain.log.heads import HeadSigner
from kei.errors import KeysChangedError

Batch = tuple[Guard | None, HeadSigner | None, list[ChainEntry]]
"""How one batch is appended, handed to a recorder with its records: (guard, sign_head,
linked): the stream that must still end where the ledger read it, who signs the
batch's head row, and the list its chain entries are put in (filled under the write
lock). A plain tuple: an append makes one, and a NamedTuple costs 0.3 % of a
one-event append."""


class ChainedRecorder(Copier, Protocol):
    """What a store asks of its recorder: appends (``Batch``) and verbatim copies."""

    def insert_pending(self, records: Sequence[PendingRecord], batch: Batch) -> None:
        """Append ``records`` in one transaction, chained."""

    def insert_locked(self, streams: Sequence[str], build: Build, batch: Batch) -> None:
        """Take the write lock, read the ends of ``streams`` and append what ``build``
        makes of them, in one transaction, chained."""


def guard_moved(guard: Guard, found: int | None) -> KeysChangedError:
    """The error of a ``guard`` whose stream was found at version ``found``."""
    where = "moved" if found is None else f"moved to version {found}"
    return KeysChangedError(
        f"stream {guard[0]} {where} (this ledger read version {guard[1]}); nothing appended"
    )


def link_entries(
    head: Any, positions: Sequence[int], records: Sequence[PendingRecord]
) -> list[ChainEntry]:
    """Chain entries for a batch, continuing from ``head`` (a (seq, hash, ...) row or None)."""
    seq, prev = (head[0] + 1, bytes(head[1])) if head else (0, GENESIS_PREV)
    entries: list[ChainEntry] = []
    add = entries.append
    for position, (stream, version, type_, state) in zip(positions, records, strict=True):
        digest = chain_hash(prev, seq, position, stream, version, type_, state)
        add(ChainEntry(position, seq, prev, digest))
        prev = digest
        seq += 1
    return entries


def head_row(
    sign_head: HeadSigner, head_position: int, entries: Sequence[ChainEntry]
) -> tuple[int, int, int, bytes, bytes]:
    """The ``kei_heads`` row that signs a linked batch (``entries``, in order)."""
    first, last = entries[0].seq, entries[-1].seq
    key_id, signature = sign_head(first, last, head_position, entries[-1].hash)
    return head_position, first, last, key_id, signature


def pending_of(stored_events: Sequence[StoredEvent]) -> list[PendingRecord]:
    """The library's stored events as kei's rows (its own recorder tests pass UUID ids,
    stored as their hex text)."""
    return [
        PendingRecord(_id_text(s.originator_id), s.originator_version, s.topic, s.state)
        for s in stored_events
    ]


def _id_text(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id
