"""The store rows are restored into (a replayed bundle, imported JSON lines).

Opening a target writes nothing: a SQLite file that does not exist is not created
here. What the rows may do to it is ``placement.py``'s to say.
"""

from __future__ import annotations

from pathlib import Path

from msgspec import Struct

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import ChainEntry
from kei.adapters.store.urls import sqlite_path
from kei.app.bundle.keys import ring_of
from kei.domain import events
from kei.domain.log.records import StoredRecord
from kei.errors import LedgerStateError


class TargetLog(Struct, frozen=True):
    """What the target's log holds already, read together before anything is written."""

    head: ChainEntry
    """Its last chain entry."""
    ledger_id: str
    """The ledger its genesis names."""
    key_records: list[StoredRecord]
    """Its key events (stream ``kei.keys``), in position order."""


class Target(Struct, frozen=True):
    """What replay needs to know about the store before it writes anything: a SQLite
    file still to create (``new_file``), or an open ``store``, with kei's tables
    (``created``) or not, and what its log holds (``log``; None: no event yet)."""

    url: str
    store: EventStore | None = None
    new_file: Path | None = None
    created: bool = False
    log: TargetLog | None = None

    @property
    def head(self) -> ChainEntry | None:
        return None if self.log is None else self.log.head

    @property
    def ledger_id(self) -> str | None:
        return None if self.log is None else self.log.ledger_id

    @property
    def size(self) -> int:
        return 0 if self.log is None else self.log.head.seq + 1

    def keys_before(self, position: int) -> list[StoredRecord]:
        """The log's key events below ``position``: the key ring rows from there on
        are checked against."""
        records = [] if self.log is None else self.log.key_records
        return [r for r in records if r.position < position]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def open_target(url: str, synchronous: str = "FULL") -> Target:
    """Look at the store at ``url`` (creating nothing)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return Target(url, new_file=path)
    store = open_store(url, synchronous=synchronous)
    try:
        created = store.is_created()
        log = _read_log(store) if created and store.count() > 0 else None
    except BaseException:
        store.close()
        raise
    return Target(url, store=store, created=created, log=log)


def _read_log(store: EventStore) -> TargetLog:
    last = store.last(1)[0]
    if last.seq is None or last.prev_hash is None or last.hash is None:
        raise LedgerStateError(
            f"the last event of {store.url} (position {last.position}) has no chain entry",
            hint="run `kei verify-chain`; nothing was written",
        )
    head = ChainEntry(last.position, last.seq, last.prev_hash, last.hash)
    key_records = list(store.read_stream(events.SYSTEM_STREAM))
    ledger_id = ring_of(key_records, last.position).ledger_id
    if ledger_id is None:
        raise LedgerStateError(
            f"{store.url} holds events but no valid genesis: replay cannot extend it",
            hint="run `kei verify-chain`; nothing was written",
        )
    return TargetLog(head, ledger_id, key_records)


def stage_folder(target: Target) -> Path | None:
    """Stage next to a SQLite target (same disk, and a new file is moved, not copied):
    in its folder, or the nearest one that exists (nothing is created before the commit)."""
    path = sqlite_path(target.url)
    if path is None:
        return None
    folder = path.absolute().parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder
