"""SQLite plumbing for kei's store: the connection pool and the chained recorder.

eventsourcing's ``SQLiteApplicationRecorder`` writes the event rows (the declared
``rowid INTEGER PRIMARY KEY`` is kei's position); kei's subclass adds the
``kei_chain`` table and, inside the same transaction and after the event INSERTs
have taken SQLite's write lock, reads the chain head and links the new entries to
it. Because the first statement of the transaction is a write, concurrent writers
in other processes queue on the lock instead of failing with a stale snapshot.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

from eventsourcing.persistence import InterfaceError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)

from kei.adapters.store import verbatim
from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE, Build, PendingRecord
from kei.adapters.store.dialect import SQLITE_SQL as SQL
from kei.adapters.store.recording import Batch, guard_moved, head_row, link_entries, pending_of
from kei.adapters.store.verbatim import ChainRow, EventRow, Found
from kei.domain.log.heads import HeadRow
from kei.errors import StoreError

log = logging.getLogger(__name__)
SYNCHRONOUS_MODES: Final = ("FULL", "NORMAL", "OFF", "EXTRA")
JOURNAL_MODES: Final = ("WAL", "MEMORY")
LOCK_TIMEOUT_S: Final = 30
STATEMENT_CACHE: Final = 64
MAX_PARAMS: Final = 999  # the oldest SQLite's limit of parameters to a statement
READ_ENDS_CHUNK: Final = 500  # streams to one ``read_ends`` statement
_HEAD: Final = f"SELECT seq, hash, position FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
# The head, and a stream's end before the batch that starts at a position (one short
# index range), in one statement: the guard costs no statement of its own.
_HEAD_GUARDED: Final = (
    f"SELECT seq, hash, position, (SELECT MAX(originator_version) FROM {EVENTS_TABLE} "
    f"WHERE originator_id = ? AND rowid < ?) FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
)
# The same, with the next head counter as the last column (appends that sign a head).
_NEXT_HEAD_COLUMN: Final = f", {SQL.next_head_value} FROM "
_HEAD_SIGNED: Final = _HEAD.replace(" FROM ", _NEXT_HEAD_COLUMN, 1)
_HEAD_GUARDED_SIGNED: Final = _HEAD_GUARDED.replace(
    f" FROM {CHAIN_TABLE}", _NEXT_HEAD_COLUMN + CHAIN_TABLE
)
_TAKE_WRITE_LOCK: Final = f"UPDATE {CHAIN_TABLE} SET seq = seq WHERE position < 0"
_INSERT_CHAIN: Final = (
    f"INSERT INTO {CHAIN_TABLE} (position, seq, prev_hash, hash) VALUES (?,?,?,?)"
)
_INSERT_HEAD: Final = SQL.insert_head
_INSERT_STORED: Final = (
    f"INSERT INTO {EVENTS_TABLE} (rowid, originator_id, originator_version, topic, state) "
    "VALUES (?,?,?,?,?)"
)


class _Pool(SQLiteConnectionPool):
    """eventsourcing's pool plus the durability pragma and a real statement cache.

    The library opens connections with ``cached_statements=True``, a cache of one
    statement, so every append re-prepared each of its statements (about 20 µs of
    a one-event append). Connections are otherwise made as the library makes them.

    The journal is WAL, as the library sets it, unless ``journal="MEMORY"``: for a
    scratch file that only this process opens and that is thrown away (or switched
    to WAL) afterwards. WAL writes every page twice (into the log, then back into
    the file); a replay staging a million events spends about 1.5 CPU-s on that.
    """

    def __init__(
        self, *, synchronous: str, journal: str = "WAL", read_only: bool = False, **kwargs: Any
    ) -> None:
        self.synchronous, self.journal, self.read_only = synchronous, journal, read_only
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
        if self.read_only:  # keeps the journal it has; refuses every write
            raw.execute("PRAGMA query_only=ON")
        elif self.journal != "WAL":
            raw.execute(f"PRAGMA journal_mode={self.journal}")
        elif not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if raw.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                raw.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        raw.execute(f"PRAGMA synchronous={self.synchronous}")
        raw.row_factory = sqlite3.Row
        return _Connection(raw, max_age=self.max_age)

    def writing(self) -> _Write:
        """One write transaction on a pooled connection (``_Write``)."""
        return _Write(self)


class _Connection(SQLiteConnection):
    """The library's connection, with its raw ``sqlite3`` connection in sight."""

    def __init__(self, raw: sqlite3.Connection, *, max_age: float | None) -> None:
        super().__init__(sqlite_conn=raw, max_age=max_age)
        self.raw = raw


class _Write:
    """A write transaction for kei's own appends: a pooled connection, ``BEGIN``, a
    plain ``sqlite3`` cursor, then commit (rollback on any error) and give it back.

    The same steps as the library's ``datastore.transaction(commit=True)``, without
    its three nested generator context managers and its cursor wrapper, which cost
    a one-event append about as much as checking the event's fields. Driver errors
    come out as ``sqlite3`` errors; ``SqlStore._appending`` maps them.
    """

    __slots__ = ("_conn", "_cursor", "_pool")

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    def __enter__(self) -> sqlite3.Cursor:
        conn = self._pool.get_connection(is_writer=True)
        try:
            if not isinstance(conn, _Connection):  # pragma: no cover - a foreign pool
                raise StoreError("the SQLite pool handed out a foreign connection")
            cursor = conn.raw.cursor()
            cursor.execute("BEGIN")
        except BaseException:
            self._pool.put_connection(conn)
            raise
        self._conn, self._cursor = conn, cursor
        return cursor

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        raw = self._conn.raw
        try:
            if exc is not None:
                raw.rollback()
                return
            try:
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
        finally:
            self._cursor.close()
            self._pool.put_connection(self._conn)


class ChainedSQLiteDatastore(SQLiteDatastore):
    def __init__(
        self, db_name: str, *, synchronous: str, journal: str = "WAL", read_only: bool = False
    ) -> None:
        super().__init__(db_name, lock_timeout=LOCK_TIMEOUT_S, originator_id_type="text")
        self.pool = _Pool(
            db_name=db_name,
            lock_timeout=LOCK_TIMEOUT_S,
            synchronous=synchronous,
            journal=journal,
            read_only=read_only,
        )


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    """Links every inserted event into ``kei_chain`` inside the insert transaction.

    The events table is eventsourcing's, except that the rowid is declared as
    ``rowid INTEGER PRIMARY KEY`` (the name keeps the library's own queries
    working): SQLite's VACUUM may renumber an undeclared rowid, which would move
    every event after the first renumbered one and break the chain (positions are
    hashed). ``(originator_id, originator_version)`` stays
    unique, which is what optimistic concurrency needs.
    """

    sql = SQL

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
            SQL.create_chain,
            SQL.create_heads,
        ]

    def insert_pending(self, records: Sequence[PendingRecord], batch: Batch) -> None:
        """kei's own append: the rows go to SQLite as they are, in one transaction
        (ending with the signed head row when the batch has a signer)."""
        with self._pool.writing() as c:
            self._insert_rows(c, records, batch)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's hook (its recorder contract tests append through it)."""
        return self._insert_rows(c, pending_of(stored_events), (None, None, []))

    @property
    def _pool(self) -> _Pool:
        pool = self.datastore.pool
        if not isinstance(pool, _Pool):  # pragma: no cover - a recorder on a foreign store
            raise StoreError("kei's SQLite recorder needs kei's connection pool")
        return pool

    def _insert_rows(
        self, c: SQLiteCursor | sqlite3.Cursor, records: Sequence[PendingRecord], batch: Batch
    ) -> list[int]:
        """Insert the batch with one ``executemany``, then link it into the chain.

        The event INSERTs come first, so the transaction holds SQLite's write lock
        before it reads the chain head. Inside that lock SQLite gives each new row
        the largest rowid plus one, so the batch's positions are the contiguous run
        ending at ``last_insert_rowid()``; the guard below refuses anything else.
        """
        guard, sign_head, linked = batch
        count = len(records)
        if count == 1:  # one-event appends: skip a statement
            c.execute(self.insert_events_statement, records[0])
            first = int(c.lastrowid or 0)
        else:
            c.executemany(self.insert_events_statement, records)
            c.execute("SELECT last_insert_rowid()")
            first = int(c.fetchone()[0]) - count + 1
        if guard is None:
            c.execute(_HEAD if sign_head is None else _HEAD_SIGNED)
            head = c.fetchone()
        else:  # the write lock is held: the guarded stream cannot move
            sql = _HEAD_GUARDED if sign_head is None else _HEAD_GUARDED_SIGNED
            c.execute(sql, (guard[0], first))
            head = c.fetchone()
            found = None if head is None else head[3]  # no head: no event before the batch
            if (found or 0) != guard[1]:
                raise guard_moved(guard, found)
        if head is not None and head[2] >= first:
            raise StoreError(
                f"new events got position {first}, but the chain already reaches position "
                f"{head[2]}; run `kei verify-chain`"
            )
        positions = range(first, first + count)
        entries = link_entries(head, positions, records)
        if count == 1:
            c.execute(_INSERT_CHAIN, entries[0])
        else:
            c.executemany(_INSERT_CHAIN, entries)
        if sign_head is not None and entries:  # the head counter cannot move: lock held
            if head is None:  # the first append: no head row to read it from
                c.execute(SQL.next_head)
                head = (None, None, None, int(c.fetchone()[0]))
            c.execute(_INSERT_HEAD, head_row(sign_head, int(head[-1]), entries))
        linked.extend(entries)
        return list(positions)

    def insert_locked(self, streams: Sequence[str], build: Build, batch: Batch) -> None:
        """Take the write lock (a write that changes nothing), then read the ends of
        ``streams``, build the records and insert them, in one transaction."""
        with self._pool.writing() as c:
            c.execute(_TAKE_WRITE_LOCK)
            self._insert_rows(c, build(read_ends(c, streams)), batch)

    # -- replay: the database's part of ``verbatim.insert_verbatim`` ------------------

    def begin_copy(self, c: SQLiteCursor, create: bool) -> tuple[Found, int]:
        """The first write (table creation, or a write that changes nothing) takes
        SQLite's write lock, so the head read next cannot move until the commit."""
        if create:
            for statement in self.create_table_statements:
                c.execute(statement)
        c.execute(_TAKE_WRITE_LOCK)
        c.execute(_HEAD)
        found = c.fetchone()
        c.execute(SQL.max_position)
        top = int(c.fetchone()[0] or 0)
        return (None if found is None else (found[2], found[0], found[1])), top

    def copy_page(self, c: SQLiteCursor, events: list[EventRow], chain: list[ChainRow]) -> None:
        """At their own rowids, many rows to a statement (``_insert_many``)."""
        _insert_many(c, _INSERT_STORED, events)
        _insert_many(c, _INSERT_CHAIN, chain)

    def end_copy(self, c: SQLiteCursor, last: int) -> None:
        """Nothing to do: SQLite's next rowid follows the largest one by itself."""


def _insert_many(c: SQLiteCursor, one: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``executemany(one, rows)``, but as many rows to a statement as SQLite takes
    (one multi-row ``VALUES``): a replay stages a million rows, and per-statement
    work is a quarter of what one row costs (1.4 of 5.9 CPU-s here)."""
    if not rows:
        return
    k = MAX_PARAMS // len(rows[0])
    full = len(rows) - len(rows) % k
    if full:
        head, _, group = one.rpartition(" VALUES ")
        many = f"{head} VALUES {','.join([group] * k)}"
        flat = itertools.chain.from_iterable
        c.executemany(many, [tuple(flat(rows[i : i + k])) for i in range(0, full, k)])
    if full < len(rows):
        c.executemany(one, rows[full:])


def copy_heads(c: SQLiteCursor, heads: Iterable[HeadRow]) -> None:
    """``verbatim.copy_heads`` into a SQLite file (a replay's staging file)."""
    verbatim.copy_heads(c, heads, SQL)


def read_ends(c: SQLiteCursor | sqlite3.Cursor, streams: Sequence[str]) -> dict[str, int]:
    """The highest version of each stream that has one.

    One MAX subquery per stream, each a single index probe, where GROUP BY over
    ``IN (...)`` would scan every row of every stream.
    """
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(streams))
    for i in range(0, len(unique), READ_ENDS_CHUNK):
        chunk = unique[i : i + READ_ENDS_CHUNK]
        c.execute(
            f"SELECT column1, (SELECT MAX(originator_version) FROM {EVENTS_TABLE} "
            f"WHERE originator_id = column1) FROM (VALUES {','.join(['(?)'] * len(chunk))})",
            chunk,
        )
        found.update((str(r[0]), int(r[1])) for r in c.fetchall() if r[1] is not None)
    return found
