"""What the PostgreSQL and MySQL/MariaDB targets share: a DB-API connection held for the
command, a session lock taken around it, transactions that roll back whatever was not
committed, and a migration file sent to the server whole.

A dialect says how to connect, how to take and drop its lock (``_acquire``,
``_release``), its tracker DDL, its placeholder and its catalogue queries. The file is
sent in one ``execute`` without parameters (so no ``%`` in it is a placeholder) and
each statement's result is read in turn (``nextset``), which counts the statements that
ran before one failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from kei.adapters.migrate.base import Connected, ScriptError, Transaction, error_text, first_line
from kei.adapters.migrate.sql import TrackerRows
from kei.domain.migrate.digest import schema_digest
from kei.errors import StoreError


class ServerTransaction(TrackerRows):
    """A transaction on a server's connection; ``catalog`` names the schema queries."""

    catalog: ClassVar[dict[str, str]] = {}
    driver_error: type[Exception] = Exception

    def schema_digest(self) -> str:
        return schema_digest({name: self._all(query) for name, query in self.catalog.items()})

    def run(self, sql: str) -> int:
        cur = self.conn.cursor()
        done = 0
        try:
            cur.execute(sql)
            done = 1
            while cur.nextset():
                done += 1
        except self.driver_error as exc:
            raise ScriptError(error_text(exc), done) from exc
        finally:
            cur.close()
        return done

    def commit(self) -> None:
        self.conn.commit()


class ServerTarget(Connected):
    """One connection to a database server (see the module docstring)."""

    transaction_type: ClassVar[type[ServerTransaction]] = ServerTransaction

    def _connect(self, connect: Callable[[], Any]) -> None:
        try:
            self.conn = connect()
        except self.driver_error as exc:
            raise StoreError(
                f"cannot connect to target {self.target.identity}: {first_line(exc)}"
            ) from exc

    def _acquire(self) -> bool:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    @contextmanager
    def session_lock(self) -> Iterator[None]:
        with self._errors():
            got = self._acquire()
            self.conn.commit()
        if not got:
            raise self.locked()
        try:
            yield
        finally:
            with suppress(self.driver_error):  # a broken session: its locks went with it
                self.conn.rollback()
                self._release()
                self.conn.commit()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._errors():
            tx = self.transaction_type(self.conn)
            tx.driver_error = self.driver_error
            try:
                yield tx
            finally:
                self.conn.rollback()
