"""The embedded store: one SQLite file, through eventsourcing's SQLite recorder.

Appends go through ``ChainedSQLiteRecorder`` (``sqlite_recorder.py``), which links
each batch into the chain under SQLite's write lock; the reads are ``sql.SqlStore``'s.
This module opens the file (read-only, and on a full disk, too), runs queries, and
turns driver errors into kei's. Durability
(``PRAGMA synchronous``) is FULL unless the caller asks for NORMAL or OFF; the
journal is WAL, except for a private scratch file (``journal="MEMORY"``, see
``sqlite_recorder._Pool``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import PersistenceError

from kei.adapters.store.dialect import SQLITE_SQL, Params
from kei.adapters.store.sql import Row, SqlStore
from kei.adapters.store.sqlite_reads import ThreadReads
from kei.adapters.store.sqlite_recorder import (
    JOURNAL_MODES,
    LOCK_TIMEOUT_S,
    READ_ENDS_CHUNK,
    SYNCHRONOUS_MODES,
    ChainedSQLiteDatastore,
    ChainedSQLiteRecorder,
    read_ends,
)
from kei.errors import StoreError, StoreNotInitialisedError

log = logging.getLogger(__name__)


class SQLiteStore(SqlStore):
    """kei's event store on one SQLite file (the shared half is ``sql.SqlStore``)."""

    sql = SQLITE_SQL
    dialect_name = "sqlite"
    recorder: ChainedSQLiteRecorder
    _reads: ThreadReads | None
    clash_errors = (ESIntegrityError, sqlite3.IntegrityError)
    driver_errors = (PersistenceError, sqlite3.Error)

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        create: bool = False,
        journal: str = "WAL",
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.url = f"sqlite:///{self.path}"
        self.name = str(self.path)
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise StoreError(
                f"unknown SQLite durability {synchronous!r}",
                hint=f"use one of {', '.join(SYNCHRONOUS_MODES)}",
            )
        if journal not in JOURNAL_MODES:
            raise StoreError(
                f"unknown SQLite journal {journal!r}", hint=f"use one of {', '.join(JOURNAL_MODES)}"
            )
        if not create and not self.path.exists():
            raise StoreNotInitialisedError(
                f"no ledger at {self.path}", hint="run `kei init` first, or pass --db"
            )
        try:
            if create:
                _create_private(self.path)
            name = read_only_uri(self.path) if read_only else str(self.path)
            self._open(name, mode, journal)
            with self._schema_conn() as conn:
                self._check_schema(conn, writable=not read_only)
        except (PersistenceError, sqlite3.Error) as exc:
            if _unreadable(exc):  # a file that is not a database, or a damaged one
                raise _store_error(self.path, exc) from exc
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(
                f"cannot open SQLite store {self.path}: {exc.strerror or exc}"
            ) from exc

    def _open(self, name: str, mode: str, journal: str) -> None:
        self._datastore = ChainedSQLiteDatastore(
            name, synchronous=mode, journal=journal, read_only=self.read_only
        )
        self.recorder = ChainedSQLiteRecorder(self._datastore)
        memory = self._datastore.pool.is_sqlite_memory_mode  # one connection's own database
        self._reads = None if memory else ThreadReads(name, read_only=self.read_only)

    def _rows(self, sql: str, params: Params = (), *, binary: bool = False) -> list[Row]:
        """One statement on this thread's read connection (``sqlite_reads.py``)."""
        if self._reads is None:
            return super()._rows(sql, params, binary=binary)
        with self._errors():
            return self._reads.rows(sql, params)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """On the pool's connections, opened with the store's pragmas (a ``PRAGMA``
        read here answers for them)."""
        return super()._rows(sql, params)

    def close(self) -> None:
        if self._reads is not None:
            self._reads.close()
        super().close()

    def _fetch(self, c: Any, sql: str, params: Params, binary: bool) -> list[Row]:
        """Text and blob columns come as stored, ``binary`` or not."""
        c.sqlite_cursor.row_factory = None
        c.execute(sql, params)
        rows: list[Row] = c.fetchall()
        return rows

    def _failed(self, exc: Exception, *, appending: bool = False) -> StoreError:
        return _store_error(self.path, exc)

    def create(self) -> None:
        with self._errors():
            self.recorder.create_table()
            self._stamp_created()

    @contextlib.contextmanager
    def _schema_conn(self) -> Iterator[sqlite3.Connection]:
        """A plain connection of its own (the steps run their own transactions),
        opened as the store was: read-only ones cannot write."""
        name = read_only_uri(self.path) if self.read_only else str(self.path)
        conn = sqlite3.connect(name, uri=True, isolation_level=None, timeout=LOCK_TIMEOUT_S)
        try:
            if self.read_only:
                conn.execute("PRAGMA query_only=ON")
            yield conn
        finally:
            conn.close()

    def stream_versions(self, streams: Sequence[str]) -> dict[str, int]:
        if self._reads is not None and len(streams) <= READ_ENDS_CHUNK:  # one statement
            with self._errors():
                return self._reads.ends(streams)
        with self._errors(), self._datastore.transaction(commit=False) as c:
            return read_ends(c, streams)

    def open_waiter(self) -> PollWaiter:
        return PollWaiter()


class PollWaiter:
    """SQLite has no notifications across processes: waiting is a short sleep."""

    def wait(self, timeout: float) -> bool:
        time.sleep(min(timeout, 0.05))
        return False

    def close(self) -> None:
        return None


def _create_private(path: Path) -> None:
    """A new store file is made 0600 whatever the umask: its -wal and -shm files
    take the same mode from it (SQLite copies the database file's permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def read_only_uri(path: Path) -> str:
    """How to open ``path`` so nothing is written: a file kei may write is opened as
    usual but ``query_only``; one it may not write (no right to write the folder or
    the file, and a mode without write bits counts, even for root, as on a read-only
    copy or mount) by a ``file:`` URI with ``mode=ro``, immutable when no write-ahead
    log beside it holds events. Immutable means SQLite takes no lock and makes no -shm
    file; with a -wal holding events it is never used, since it would hide them."""
    if _writable(path.parent) and _writable(path) and not _idle_on_full_disk(path):
        # A live ledger: opened as usual, so the last connection to close removes the
        # -wal and -shm files as always (a ``mode=ro`` connection leaves them behind);
        # the connection is made ``query_only`` (``sqlite_recorder._Pool``).
        return str(path)
    uri = path.absolute().as_uri() + "?mode=ro"
    if not _wal_holds_events(path):
        uri += "&immutable=1"
    return uri


MIN_FREE_TO_OPEN: Final = 256 * 1024
"""Free bytes below which an idle store is read ``immutable`` rather than opened as
usual: SQLite would make its ``-wal`` and 32 KiB ``-shm`` files, and fail half-way."""


def _idle_on_full_disk(path: Path) -> bool:
    """No process has the store open (no ``-shm``), its log holds nothing, and its
    disk has almost no room: an ordinary open would fail, or leave files behind."""
    if path.with_name(path.name + "-shm").exists() or _wal_holds_events(path):
        return False
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < MIN_FREE_TO_OPEN


def _wal_holds_events(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    try:
        return wal.stat().st_size > 0
    except FileNotFoundError:
        return False


def _writable(path: Path) -> bool:
    """May we write ``path``, and does its mode allow writes at all? (root may write
    a 0444 file, but its owner made it read-only: it is treated so.)"""
    try:
        bits = path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    except OSError:
        return False
    return bool(bits) and os.access(path, os.W_OK)


def _unreadable(exc: BaseException) -> bool:
    return "not a database" in str(exc) or "malformed" in str(exc)


def _store_error(path: Path, exc: BaseException) -> StoreError:
    text = str(exc)
    if "no such table" in text:
        return StoreNotInitialisedError(
            f"{path} holds no kei ledger", hint="run `kei init` to create one"
        )
    if _unreadable(exc):
        return StoreError(f"{path} is not a readable SQLite database ({text})")
    if not os.access(path, os.R_OK):
        return StoreError(f"cannot read {path}: permission denied")
    return StoreError(f"SQLite store {path} failed: {text}")
