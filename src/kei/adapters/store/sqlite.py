"""The embedded store: one SQLite file, through eventsourcing's SQLite recorder.

eventsourcing's ``SQLiteApplicationRecorder`` writes the event rows (the declared
``rowid INTEGER PRIMARY KEY`` is kei's position); kei's subclass adds the ``kei_chain`` table and, inside the same
transaction and after the event INSERTs have taken SQLite's write lock, reads the
chain head and links the new entries to it. Because the first statement of the
transaction is a write, concurrent writers in other processes queue on the lock
instead of failing with a stale snapshot. Durability (``PRAGMA synchronous``) is
FULL unless the caller asks for NORMAL or OFF.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import InterfaceError, PersistenceError, StoredEvent
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
from kei.adapters.store.recording import RecorderAppends
from kei.domain.envelope import GENESIS_PREV, chain_hash
from kei.domain.records import StoredRecord
from kei.errors import ConcurrencyError, StoreError, StoreNotInitialisedError

log = logging.getLogger(__name__)
SYNCHRONOUS_MODES: Final = ("FULL", "NORMAL", "OFF", "EXTRA")
LOCK_TIMEOUT_S: Final = 30
STATEMENT_CACHE: Final = 64
_HEAD: Final = f"SELECT seq, hash, position FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
_TAKE_WRITE_LOCK: Final = f"UPDATE {CHAIN_TABLE} SET seq = seq WHERE position < 0"
_INSERT_CHAIN: Final = (
    f"INSERT INTO {CHAIN_TABLE} (position, seq, prev_hash, hash) VALUES (?,?,?,?)"
)
_SELECT: Final = (
    f"SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state, "
    f"c.seq, c.prev_hash, c.hash FROM {EVENTS_TABLE} e "
    f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.rowid "
)


class _Pool(SQLiteConnectionPool):
    """eventsourcing's pool plus the durability pragma and a real statement cache.

    The library opens connections with ``cached_statements=True``, a cache of one
    statement, so every append re-prepared each of its statements (about 20 µs of
    a one-event append). Connections are otherwise made as the library makes them.
    """

    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        try:
            raw = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or LOCK_TIMEOUT_S,
            )
        except (sqlite3.Error, TypeError) as exc:
            raise InterfaceError(exc) from exc
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if raw.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                raw.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        raw.execute(f"PRAGMA synchronous={self.synchronous}")
        raw.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)


class _Datastore(SQLiteDatastore):
    def __init__(self, db_name: str, *, synchronous: str) -> None:
        super().__init__(db_name, lock_timeout=LOCK_TIMEOUT_S, originator_id_type="text")
        self.pool = _Pool(db_name=db_name, lock_timeout=LOCK_TIMEOUT_S, synchronous=synchronous)


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    """Links every inserted event into ``kei_chain`` inside the insert transaction.

    The events table is eventsourcing's, except that the rowid is declared as
    ``rowid INTEGER PRIMARY KEY`` (the name keeps the library's own queries
    working): SQLite's VACUUM may renumber an undeclared rowid, which would move
    every event after the first renumbered one and break the chain (positions are
    hashed). ``(originator_id, originator_version)`` stays
    unique, which is what optimistic concurrency needs.
    """

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = EVENTS_TABLE) -> None:
        super().__init__(datastore, events_table_name)
        self.insert_events_statement = (
            f"INSERT INTO {self.events_table_name} "
            "(originator_id, originator_version, topic, state) VALUES (?,?,?,?)"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.events_table_name} ("
            "rowid INTEGER PRIMARY KEY, originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, UNIQUE (originator_id, originator_version))",
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
            "position INTEGER PRIMARY KEY, seq INTEGER NOT NULL, "
            "prev_hash BLOB NOT NULL, hash BLOB NOT NULL)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the batch with one ``executemany``, then link it into the chain.

        The event INSERTs come first, so the transaction holds SQLite's write lock
        before it reads the chain head. Inside that lock SQLite gives each new row
        the largest rowid plus one, so the batch's positions are the contiguous run
        ending at ``last_insert_rowid()``; the guard below refuses anything else.
        """
        count = len(stored_events)
        rows = [
            (_id_text(s.originator_id), s.originator_version, s.topic, s.state)
            for s in stored_events
        ]
        if count == 1:  # one-event appends: skip a statement
            c.execute(self.insert_events_statement, rows[0])
            first = int(c.lastrowid)
        else:
            c.executemany(self.insert_events_statement, rows)
            c.execute("SELECT last_insert_rowid()")
            first = int(c.fetchone()[0]) - count + 1
        c.execute(_HEAD)
        head = c.fetchone()
        if head is not None and head[2] >= first:
            raise StoreError(
                f"new events got position {first}, but the chain already reaches position "
                f"{head[2]}; run `kei verify-chain`"
            )
        positions = range(first, first + count)
        entries = link_entries(head, positions, stored_events)
        chain_rows = [(e.position, e.seq, e.prev_hash, e.hash) for e in entries]
        if count == 1:
            c.execute(_INSERT_CHAIN, chain_rows[0])
        else:
            c.executemany(_INSERT_CHAIN, chain_rows)
        kwargs.get("chain_out", []).extend(entries)
        return list(positions)

    def insert_locked(
        self,
        streams: Sequence[str],
        build: Callable[[dict[str, int]], Sequence[PendingRecord]],
        chain_out: list[ChainEntry],
    ) -> None:
        """Take the write lock (a write that changes nothing), then read the ends of
        ``streams``, build the records and insert them, in one transaction."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(_TAKE_WRITE_LOCK)
            records = build(read_ends(c, streams))
            stored = [StoredEvent(r.stream, r.version, r.type, r.state) for r in records]
            self._insert_events(c, stored, chain_out=chain_out)


def read_ends(c: SQLiteCursor, streams: Sequence[str]) -> dict[str, int]:
    """The highest version of each stream that has one.

    One MAX subquery per stream, each a single index probe, where GROUP BY over
    ``IN (...)`` would scan every row of every stream.
    """
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(streams))
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        c.execute(
            f"SELECT column1, (SELECT MAX(originator_version) FROM {EVENTS_TABLE} "
            f"WHERE originator_id = column1) FROM (VALUES {','.join(['(?)'] * len(chunk))})",
            chunk,
        )
        found.update((str(r[0]), int(r[1])) for r in c.fetchall() if r[1] is not None)
    return found


def link_entries(
    head: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[ChainEntry]:
    """Chain entries for a batch, continuing from ``head`` (a (seq, hash, ...) row or None)."""
    seq, prev = (head[0] + 1, bytes(head[1])) if head else (0, GENESIS_PREV)
    entries: list[ChainEntry] = []
    add = entries.append
    for position, s in zip(positions, stored_events, strict=True):
        digest = chain_hash(
            prev, seq, position, str(s.originator_id), s.originator_version, s.topic, s.state
        )
        add(ChainEntry(position, seq, prev, digest))
        prev = digest
        seq += 1
    return entries


def _id_text(originator_id: UUID | str) -> str:
    """kei's stream ids are text; the library's own tests also pass UUIDs (stored as hex)."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class SQLiteStore(RecorderAppends):
    """kei's event store on one SQLite file."""

    def __init__(
        self, path: str | Path, *, synchronous: str = "FULL", create: bool = False
    ) -> None:
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

    @contextlib.contextmanager
    def _appending(self) -> Iterator[None]:
        try:
            yield
        except ESIntegrityError as exc:
            raise ConcurrencyError(f"a stream version was taken by another writer: {exc}") from exc
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

    def stream_version(self, stream: str) -> int:
        rows = self._query(
            f"SELECT MAX(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = ?", (stream,)
        )
        return int(rows[0][0] or 0)

    def stream_versions(self, streams: Sequence[str]) -> dict[str, int]:
        try:
            with self._datastore.transaction(commit=False) as c:
                return read_ends(c, streams)
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

    def read(
        self, *, after: int = 0, limit: int = PAGE, upto: int | None = None
    ) -> list[StoredRecord]:
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

    # -- verification scans (kei verify-chain) --------------------------------

    def scan(self, *, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        """Raw rows ``after < position <= upto`` for the verifier, as plain tuples.

        (position, stream, version, type, state, seq, prev_hash, hash), with text and
        blob columns as the exact bytes stored, so a verifier hashes what is on disk
        and a mangled value becomes a finding rather than a decode error here.
        """
        try:
            with self._datastore.transaction(commit=False) as c:
                c.sqlite_cursor.row_factory = None
                c.execute(_SCAN, (after, upto, limit))
                rows: list[tuple[Any, ...]] = c.fetchall()
                return rows
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

    def chain_count(self) -> int:
        """The number of chain rows (the verifier compares it with the rows it saw)."""
        return int(self._query(f"SELECT count(*) FROM {CHAIN_TABLE}")[0][0])

    def next_position(self, after: int) -> int | None:
        """The lowest position above ``after`` (an index probe), None past the end."""
        rows = self._query(f"SELECT MIN(rowid) FROM {EVENTS_TABLE} WHERE rowid > ?", (after,))
        found = rows[0][0]
        return None if found is None else int(found)

    def scan_types(self, types: Sequence[str]) -> list[tuple[Any, ...]]:
        """Raw rows (as ``scan``) of the given event types, in position order."""
        marks = ",".join("?" * len(types))
        try:
            with self._datastore.transaction(commit=False) as c:
                c.sqlite_cursor.row_factory = None
                c.execute(_SCAN_TYPES.format(marks=marks), tuple(types))
                rows: list[tuple[Any, ...]] = c.fetchall()
                return rows
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc


_SCAN: Final = (
    "SELECT e.rowid, CAST(e.originator_id AS BLOB), e.originator_version, "
    "CAST(e.topic AS BLOB), CAST(e.state AS BLOB), c.seq, CAST(c.prev_hash AS BLOB), "
    f"CAST(c.hash AS BLOB) FROM {EVENTS_TABLE} e "
    f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.rowid "
    "WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid LIMIT ?"
)
_SCAN_TYPES: Final = (
    "SELECT e.rowid, CAST(e.originator_id AS BLOB), e.originator_version, "
    "CAST(e.topic AS BLOB), CAST(e.state AS BLOB), c.seq, CAST(c.prev_hash AS BLOB), "
    f"CAST(c.hash AS BLOB) FROM {EVENTS_TABLE} e "
    f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.rowid "
    "WHERE e.topic IN ({marks}) ORDER BY e.rowid"
)


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
