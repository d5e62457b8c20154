"""The store rows are restored into (a replayed bundle, imported JSON lines).

Opening a target writes nothing: a SQLite file that does not exist is not created
here. What the rows may do to it is ``placement.py``'s to say.
"""

from __future__ import annotations

from pathlib import Path

from msgspec import Struct, field

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import ChainEntry
from kei.adapters.store.urls import sqlite_path
from kei.app.bundle.keys import ring_of
from kei.domain import events
from kei.domain.log.records import StoredRecord
from kei.errors import LedgerStateError


class Target(Struct):
    """What replay needs to know about the store before it writes anything."""

    url: str
    store: EventStore | None = None
    new_file: Path | None = None
    created: bool = False
    ledger_id: str | None = None
    head: ChainEntry | None = None
    key_records: list[StoredRecord] = field(default_factory=list)

    @property
    def size(self) -> int:
        return 0 if self.head is None else self.head.seq + 1

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def open_target(url: str, synchronous: str = "FULL") -> Target:
    """Look at the store at ``url`` (creating nothing)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return Target(url, new_file=path)
    store = open_store(url, synchronous=synchronous)
    target = Target(url, store=store)
    try:
        target.created = store.is_created()
        if target.created and store.count() > 0:
            _read_log(target, store)
    except BaseException:
        store.close()
        raise
    return target


def _read_log(target: Target, store: EventStore) -> None:
    last = store.last(1)[0]
    if last.seq is None or last.prev_hash is None or last.hash is None:
        raise LedgerStateError(
            f"the last event of {store.url} (position {last.position}) has no chain entry",
            hint="run `kei verify-chain`; nothing was written",
        )
    target.head = ChainEntry(last.position, last.seq, last.prev_hash, last.hash)
    target.key_records = list(store.read_stream(events.SYSTEM_STREAM))
    target.ledger_id = ring_of(target.key_records, last.position).ledger_id
    if target.ledger_id is None:
        raise LedgerStateError(
            f"{store.url} holds events but no valid genesis: replay cannot extend it",
            hint="run `kei verify-chain`; nothing was written",
        )


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
