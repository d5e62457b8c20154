"""The append half both stores share: hand sealed records to a chained recorder,
and link a committed batch into the chain (``link_entries``, run under the lock).

Each store's recorder (``ChainedSQLiteRecorder``, ``ChainedPostgresRecorder``) does
the SQL and the chain under its write lock; each store's ``_appending`` turns the
driver's and the library's errors into kei's. Only the wiring between them is here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from kei.adapters.store.base import ChainEntry, Guard, PendingRecord
from kei.domain.log.envelope import GENESIS_PREV, chain_hash
from kei.domain.log.heads import HeadSigner
from kei.errors import KeysChangedError

Build = Callable[[dict[str, int]], Sequence[PendingRecord]]


class RecorderAppends:
    """``append`` and ``append_locked`` over ``self.recorder``."""

    recorder: Any

    def _appending(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def append(
        self,
        records: Sequence[PendingRecord],
        guard: Guard | None = None,
        sign_head: HeadSigner | None = None,
    ) -> list[ChainEntry]:
        chain_out: list[ChainEntry] = []
        with self._appending():
            self.recorder.insert_pending(records, chain_out, guard, sign_head)
        return chain_out

    def append_locked(
        self, streams: Sequence[str], build: Build, sign_head: HeadSigner | None = None
    ) -> list[ChainEntry]:
        chain_out: list[ChainEntry] = []
        with self._appending():
            self.recorder.insert_locked(streams, build, chain_out, sign_head)
        return chain_out


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
