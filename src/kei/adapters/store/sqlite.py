"""The embedded store: one SQLite file, through eventsourcing's SQLite recorder.

Appends go through ``ChainedSQLiteRecorder`` (``sqlite_recorder.py``), which links
each batch into the chain under SQLite's write lock; this module opens the file,
reads it back as raw records, and turns driver errors into kei's. Durability
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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import PersistenceError

from kei.adapters.store.base import (
    CHAIN_TABLE,
    EVENTS_TABLE,
    HEADS_TABLE,
    PAGE,
    TREE_TABLE,
    ChainEntry,
)
from kei.adapters.store.recording import RecorderAppends
from kei.adapters.store.sqlite_recorder import (
    JOURNAL_MODES,
    SYNCHRONOUS_MODES,
    ChainedSQLiteDatastore,
    ChainedSQLiteRecorder,
    read_ends,
)
from kei.adapters.store.verbatim import Splitter, split_rows
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.errors import ConcurrencyError, StoreError, StoreNotInitialisedError

log = logging.getLogger(__name__)
_SELECT: Final = (
    f"SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state, "
    f"c.seq, c.prev_hash, c.hash FROM {EVENTS_TABLE} e "
    f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.rowid "
)


class SQLiteStore(RecorderAppends):
    """kei's event store on one SQLite file."""

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
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(
                f"cannot open SQLite store {self.path}: {exc.strerror or exc}"
            ) from exc

    def _open(self, name: str, mode: str, journal: str) -> None:
        self._datastore = ChainedSQLiteDatastore(
            name, synchronous=mode, journal=journal, read_only=self.read_only
        )
        self.recorder = ChainedSQLiteRecorder(self._datastore, events_table_name=EVENTS_TABLE)

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
        except (ESIntegrityError, sqlite3.IntegrityError) as exc:
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

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read of the read models beside the log, as plain tuples (``?`` marks)."""
        try:
            with self._datastore.transaction(commit=False) as c:
                c.sqlite_cursor.row_factory = None
                c.execute(sql, params)
                rows: list[tuple[Any, ...]] = c.fetchall()
                return rows
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

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

    # -- stored Merkle subtree hashes (app/ledger/merkle_tree.py) ------------------------

    def has_tree_table(self) -> bool:
        rows = self._query(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name = ?", (TREE_TABLE,)
        )
        return bool(rows[0][0])

    def put_tree_nodes(self, rows: Sequence[tuple[int, int, bytes, int]]) -> None:
        try:
            with self._datastore.transaction(commit=True) as c:
                c.execute(_TREE_DDL)
                if rows:
                    c.executemany(
                        f"INSERT OR IGNORE INTO {TREE_TABLE} "
                        "(level, idx, hash, last_position) VALUES (?,?,?,?)",
                        rows,
                    )
        except (PersistenceError, sqlite3.Error) as exc:
            raise _store_error(self.path, exc) from exc

    def read_heads(self, *, after: int, limit: int) -> list[HeadRow]:
        if not self._query(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name = ?", (HEADS_TABLE,)
        ):
            return []
        return [
            tuple(r)
            for r in self._query(
                f"SELECT position, first_seq, seq, key_id, signature FROM {HEADS_TABLE} "
                "WHERE position > ? ORDER BY position LIMIT ?",
                (after, limit),
            )
        ]

    # -- replay (kei replay) ---------------------------------------------------------

    def insert_stored(
        self,
        pages: Iterable[Sequence[Any]],
        *,
        head: ChainEntry | None,
        create: bool = False,
        split: Splitter = split_rows,
        heads: Iterable[HeadRow] = (),
    ) -> int:
        """Insert verified rows verbatim in one transaction (``store/verbatim.py``)."""
        try:
            return int(
                self.recorder.insert_stored(pages, head, create=create, split=split, heads=heads)
            )
        except (ESIntegrityError, sqlite3.IntegrityError) as exc:
            raise StoreError(
                f"{self.path} refused the replayed events ({exc}); nothing was written"
            ) from exc
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

_TREE_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {TREE_TABLE} (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
    "hash BLOB NOT NULL, last_position INTEGER NOT NULL, PRIMARY KEY (level, idx))"
)


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
