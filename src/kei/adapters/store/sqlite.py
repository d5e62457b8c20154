"""The embedded store: one SQLite file, through eventsourcing's SQLite recorder.

eventsourcing's ``SQLiteApplicationRecorder`` writes the event rows (its rowid is
kei's position); kei's subclass adds the ``kei_chain`` table and, inside the same
transaction and after the event INSERTs have taken SQLite's write lock, reads the
chain head and links the new entries to it. Because the first statement of the
transaction is a write, concurrent writers in other processes queue on the lock
instead of failing with a stale snapshot. Durability (``PRAGMA synchronous``) is
FULL unless the caller asks for NORMAL or OFF.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)

from kei.adapters.store.base import (
    CHAIN_TABLE,
    EVENTS_TABLE,
    PAGE,
    ChainEntry,
    PendingRecord,
)
from kei.domain.envelope import GENESIS_PREV, chain_hash
from kei.domain.records import StoredRecord
from kei.errors import ConcurrencyError, StoreError, StoreNotInitialisedError

log = logging.getLogger(__name__)
SYNCHRONOUS_MODES: Final = ("FULL", "NORMAL", "OFF", "EXTRA")
LOCK_TIMEOUT_S: Final = 30
_SELECT: Final = (
    f"SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state, "
    f"c.seq, c.prev_hash, c.hash FROM {EVENTS_TABLE} e "
    f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.rowid "
)


class _Pool(SQLiteConnectionPool):
    """eventsourcing's pool plus the durability pragma on every new connection."""

    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        cursor = conn.cursor()
        cursor.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn


class _Datastore(SQLiteDatastore):
    def __init__(self, db_name: str, *, synchronous: str) -> None:
        super().__init__(db_name, lock_timeout=LOCK_TIMEOUT_S, originator_id_type="text")
        self.pool = _Pool(db_name=db_name, lock_timeout=LOCK_TIMEOUT_S, synchronous=synchronous)


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    """Links every inserted event into ``kei_chain`` inside the insert transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
            "position INTEGER PRIMARY KEY, seq INTEGER NOT NULL, "
            "prev_hash BLOB NOT NULL, hash BLOB NOT NULL)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        c.execute(f"SELECT seq, hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")
        head = c.fetchone()
        entries = link_entries(head, positions, stored_events)
        c.executemany(
            f"INSERT INTO {CHAIN_TABLE} (position, seq, prev_hash, hash) VALUES (?,?,?,?)",
            [(e.position, e.seq, e.prev_hash, e.hash) for e in entries],
        )
        kwargs.get("chain_out", []).extend(entries)
        return positions


def link_entries(
    head: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[ChainEntry]:
    """Chain entries for a batch, continuing from ``head`` (a (seq, hash) row or None)."""
    seq, prev = (head[0] + 1, bytes(head[1])) if head else (0, GENESIS_PREV)
    entries = []
    for position, s in zip(positions, stored_events, strict=True):
        digest = chain_hash(
            prev, seq, position, str(s.originator_id), s.originator_version, s.topic, s.state
        )
        entries.append(ChainEntry(position, seq, prev, digest))
        prev, seq = digest, seq + 1
    return entries


class SQLiteStore:
    """kei's event store on one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", create: bool = False) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise StoreError(
                f"unknown SQLite durability {synchronous!r}",
                hint=f"use one of {', '.join(SYNCHRONOUS_MODES)}",
            )
        if not create and not self.path.exists():
            raise StoreNotInitialisedError(
                f"no ledger at {self.path}", hint="run `kei init` first, or pass --db"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._datastore = _Datastore(str(self.path), synchronous=mode)
            self.recorder = ChainedSQLiteRecorder(self._datastore, events_table_name=EVENTS_TABLE)
        except (PersistenceError, sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._datastore.transaction(commit=False) as c:
                c.execute(sql, params)
                rows: list[Any] = c.fetchall()
                return rows
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

    def create(self) -> None:
        try:
            self.recorder.create_table()
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

    def is_created(self) -> bool:
        rows = self._query(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN (?, ?)",
            (EVENTS_TABLE, CHAIN_TABLE),
        )
        return bool(rows[0][0] == 2)

    def append(self, records: Sequence[PendingRecord]) -> list[ChainEntry]:
        stored = [StoredEvent(r.stream, r.version, r.type, r.state) for r in records]
        chain_out: list[ChainEntry] = []
        try:
            self.recorder.insert_events(stored, chain_out=chain_out)
        except ESIntegrityError as exc:
            raise ConcurrencyError(f"a stream version was taken by another writer: {exc}") from exc
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc
        return chain_out

    def stream_version(self, stream: str) -> int:
        rows = self._query(
            f"SELECT MAX(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = ?", (stream,)
        )
        return int(rows[0][0] or 0)

    def read(self, *, after: int = 0, limit: int = PAGE, upto: int | None = None) -> list[StoredRecord]:
        where, params = "WHERE e.rowid > ? ", [after]
        if upto is not None:
            where += "AND e.rowid <= ? "
            params.append(upto)
        rows = self._query(_SELECT + where + "ORDER BY e.rowid LIMIT ?", (*params, limit))
        return [_record(r) for r in rows]

    def read_stream(self, stream: str) -> list[StoredRecord]:
        rows = self._query(
            _SELECT + "WHERE e.originator_id = ? ORDER BY e.originator_version", (stream,)
        )
        return [_record(r) for r in rows]

    def read_types(self, types: Sequence[str]) -> list[StoredRecord]:
        marks = ",".join("?" * len(types))
        rows = self._query(_SELECT + f"WHERE e.topic IN ({marks}) ORDER BY e.rowid", tuple(types))
        return [_record(r) for r in rows]

    def last(self, n: int) -> list[StoredRecord]:
        rows = self._query(_SELECT + "ORDER BY e.rowid DESC LIMIT ?", (n,))
        return [_record(r) for r in reversed(rows)]

    def max_position(self) -> int:
        return int(self._query(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}")[0][0] or 0)

    def count(self) -> int:
        return int(self._query(f"SELECT count(*) FROM {EVENTS_TABLE}")[0][0])

    def chain_at(self, seq: int) -> ChainEntry | None:
        rows = self._query(
            f"SELECT position, seq, prev_hash, hash FROM {CHAIN_TABLE} WHERE seq = ? "
            "ORDER BY position LIMIT 1",
            (seq,),
        )
        return _entry(rows[0]) if rows else None

    def chain_size(self) -> int:
        rows = self._query(f"SELECT MAX(seq) FROM {CHAIN_TABLE}")
        return 0 if rows[0][0] is None else int(rows[0][0]) + 1

    def orphan_chain_entries(self) -> list[ChainEntry]:
        rows = self._query(
            f"SELECT position, seq, prev_hash, hash FROM {CHAIN_TABLE} "
            f"WHERE position NOT IN (SELECT rowid FROM {EVENTS_TABLE}) ORDER BY position"
        )
        return [_entry(r) for r in rows]

    def open_waiter(self) -> PollWaiter:
        return PollWaiter()

    def close(self) -> None:
        self._datastore.close()


class PollWaiter:
    """SQLite has no notifications across processes: waiting is a short sleep."""

    def wait(self, timeout: float) -> bool:
        time.sleep(min(timeout, 0.05))
        return False

    def close(self) -> None:
        return None


def _record(r: Any) -> StoredRecord:
    return StoredRecord(
        r[0], r[1], r[2], r[3], bytes(r[4]), r[5],
        None if r[6] is None else bytes(r[6]),
        None if r[7] is None else bytes(r[7]),
    )  # fmt: skip


def _entry(r: Any) -> ChainEntry:
    return ChainEntry(int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]))


def _store_error(path: Path, exc: BaseException) -> StoreError:
    text = str(exc)
    if "no such table" in text:
        return StoreNotInitialisedError(
            f"{path} holds no kei ledger", hint="run `kei init` to create one"
        )
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path} is not a readable SQLite database ({text})")
    if not os.access(path, os.R_OK):
        return StoreError(f"cannot read {path}: permission denied")
    return StoreError(f"SQLite store {path} failed: {text}")
