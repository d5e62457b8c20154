"""A SQLite file as a migration target (the standard library's ``sqlite3``).

The connection runs in autocommit mode (``isolation_level=None``) and every
transaction begins with ``BEGIN IMMEDIATE``: SQLite's write lock, taken before the
first read, so a second runner waits (up to the lock timeout) instead of reading a
tracker table that is about to change. SQLite's DDL is transactional, so a migration's
statements and its tracker row commit together or not at all; a process killed in
between leaves a journal the next opener rolls back.

``sqlite3`` runs one statement per ``execute`` and ``executescript`` commits first, so
a file is split with ``sqlite3.complete_statement`` (SQLite's own ``sqlite3_complete``:
it knows strings, comments and a trigger's ``BEGIN … END``) and its statements run one
by one inside the transaction. The schema digest reads ``sqlite_master``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kei.adapters.migrate.base import ScriptError, Transaction, error_text, first_line
from kei.adapters.migrate.sql import SQLITE_TRACKER_DDL, TrackerRows, statements
from kei.domain.migrate.digest import schema_digest
from kei.domain.migrate.target import Target
from kei.domain.migrate.tracker import KEI_TABLES
from kei.errors import ContentionError, InputError, StoreError

_SCHEMA = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master "
    f"WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND tbl_name NOT IN {KEI_TABLES!r}"
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
    sql = statements("?")

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


class SqliteTarget:
    """One connection to a SQLite file."""

    transactional_ddl = True

    def __init__(self, target: Target, path: Path, *, lock_timeout: float, create: bool) -> None:
        if not create and not path.is_file():
            raise InputError(
                f"no SQLite database at {path}",
                hint="check the --target URL (sqlite:////abs/path.db is absolute, "
                "sqlite:///rel.db relative)",
            )
        self.target = target
        try:
            self.conn = sqlite3.connect(path, timeout=lock_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite target {path}: {first_line(exc)}") from exc

    @contextmanager
    def session_lock(self) -> Iterator[None]:
        yield  # SQLite's lock is each transaction's BEGIN IMMEDIATE

    def ensure_tracker(self) -> None:
        with self._errors():
            self.conn.execute(SQLITE_TRACKER_DDL)

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

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite target {self.target.identity}: {first_line(exc)}") from exc

    def close(self) -> None:
        self.conn.close()
