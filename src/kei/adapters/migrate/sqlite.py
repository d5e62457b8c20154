"""A SQLite file as a migration target (the standard library's ``sqlite3``).

The connection runs in autocommit mode (``isolation_level=None``) and every
transaction begins with ``BEGIN IMMEDIATE``: SQLite's write lock, taken before the
first read, so a second runner waits (up to the lock timeout) instead of reading a
tracker table that is about to change. SQLite's DDL is transactional, so a migration's
statements and its tracker row commit together or not at all; a process killed in
between leaves a journal the next opener rolls back.

SQLite has no session lock, and ``BEGIN IMMEDIATE`` ends with each commit, while a
runner still has the migration's outcome to append to kei's log after it; so for the
whole command the runner also holds an exclusive ``flock(2)`` on the database file.
SQLite's own locks are POSIX record locks, which Linux keeps apart from ``flock``, so
the application's reads and writes are not held up; the kernel drops it when the
process dies. The descriptor is closed only after the SQLite connection (closing
another descriptor of the file would drop SQLite's record locks in this process).

``sqlite3`` runs one statement per ``execute`` and ``executescript`` commits first, so
a file is split with ``sqlite3.complete_statement`` (SQLite's own ``sqlite3_complete``:
it knows strings, comments and a trigger's ``BEGIN … END``) and its statements run one
by one inside the transaction. The schema digest reads ``sqlite_master``.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kei.adapters.migrate.base import Connected, ScriptError, Transaction, error_text, first_line
from kei.adapters.migrate.sql import NOT_KEI, SQLITE_TRACKER_DDL, TrackerRows
from kei.domain.migrate.digest import schema_digest
from kei.domain.migrate.target import Target
from kei.errors import ContentionError, InputError, StoreError

_SCHEMA = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master "
    f"WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name {NOT_KEI}"
)


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql`` in order, each ending at the ``;`` SQLite's tokenizer
    says ends it; what follows the last one (a comment, a statement without its ``;``)
    is kept when it holds more than blanks."""
    out: list[str] = []
    start = 0
    at = sql.find(";")
    while at != -1:
        piece = sql[start : at + 1]
        if sqlite3.complete_statement(piece):
            out.append(piece)
            start = at + 1
        at = sql.find(";", at + 1)
    rest = sql[start:]
    if rest.strip():
        out.append(rest)
    return out


class _SqliteTransaction(TrackerRows):
    placeholder = "?"

    def schema_digest(self) -> str:
        return schema_digest({"sqlite_master": self._all(_SCHEMA)})

    def run(self, sql: str) -> int:
        done = 0
        for statement in split_statements(sql):
            try:
                self.conn.execute(statement)
            except sqlite3.Error as exc:
                raise ScriptError(error_text(exc), done) from exc
            done += 1
        return done

    def commit(self) -> None:
        self.conn.execute("COMMIT")  # and the lock with it: nothing more runs in this block


class SqliteTarget(Connected):
    """One connection to a SQLite file."""

    transactional_ddl = True
    driver_error = sqlite3.Error
    ddl = (SQLITE_TRACKER_DDL,)

    def __init__(self, target: Target, path: Path, *, lock_timeout: float, create: bool) -> None:
        if not create and not path.is_file():
            raise InputError(
                f"no SQLite database at {path}",
                hint="check the --target URL (sqlite:////abs/path.db is absolute, "
                "sqlite:///rel.db relative)",
            )
        self.target = target
        self._timeout = lock_timeout
        try:
            self.conn = sqlite3.connect(path, timeout=lock_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite target {path}: {first_line(exc)}") from exc
        try:
            self.conn.execute("PRAGMA schema_version")  # a file that is not SQLite fails here
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (sqlite3.Error, OSError) as exc:
            self.conn.close()
            raise InputError(f"{path} is not a usable SQLite database: {first_line(exc)}") from None

    @contextmanager
    def session_lock(self) -> Iterator[None]:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise self.locked() from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._errors():
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise ContentionError(
                        f"{self.target.identity} is locked by another writer",
                        hint="another kei migrate may be running; try again later",
                    ) from exc
                raise
            try:
                yield _SqliteTransaction(self.conn)
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")

    def close(self) -> None:
        super().close()
        os.close(self._fd)
