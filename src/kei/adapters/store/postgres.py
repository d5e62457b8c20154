"""The scale-out store: PostgreSQL through eventsourcing's psycopg 3 recorder.

Appends go through ``ChainedPostgresRecorder`` (``postgres_recorder.py``), which
links each batch into the chain under the events table's EXCLUSIVE lock. Positions
come from a sequence and may have gaps after a rolled-back insert; the chain's own
sequence numbers never do. The reads are ``sql.SqlStore``'s. This module connects
with the arguments of a ``StoreURL`` (every libpq option included), probes the server
so an unreachable one is one line, runs queries (the verifier's in binary format), and
listens: every insert sends NOTIFY on the events channel, which ``open_waiter``
listens to (followers also poll).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

import psycopg
from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row

from kei.adapters.store.base import EVENTS_TABLE
from kei.adapters.store.dialect import POSTGRES_SQL, Params
from kei.adapters.store.postgres_recorder import ENDS_SQL, ChainedPostgresRecorder
from kei.adapters.store.sql import Row, SqlStore
from kei.adapters.store.urls import StoreURL
from kei.errors import InputError, StoreError, StoreNotInitialisedError

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S: Final = 5


def _add_options(datastore: PostgresDatastore, args: dict[str, Any]) -> None:
    """Give the library's pool (opened lazily, on first use) every connection argument,
    the libpq options it takes no parameter for included: a ``?sslmode=require`` that
    kei dropped would connect in clear without a word."""
    kwargs = datastore.pool.kwargs
    if not isinstance(kwargs, dict):  # pragma: no cover - the library's pool changed
        raise StoreError("cannot pass connection options to the PostgreSQL pool")
    kwargs.update(args)


class PostgresStore(SqlStore):
    """kei's event store on one PostgreSQL database (the shared half is ``sql.SqlStore``)."""

    sql = POSTGRES_SQL
    dialect_name = "postgresql"
    recorder: ChainedPostgresRecorder
    clash_errors = (ESIntegrityError, psycopg.errors.IntegrityError)
    driver_errors = (PersistenceError, psycopg.Error)

    def __init__(self, url: str | StoreURL, *, pool_size: int = 2, read_only: bool = False) -> None:
        """``read_only``: the open itself writes nothing (an unversioned store is checked,
        not stamped); the database still accepts writes, unlike a ``mode=ro`` SQLite file."""
        parsed = StoreURL.parse(url)
        self.read_only = read_only
        if parsed.scheme != "postgresql":
            raise InputError(f"not a PostgreSQL URL: {parsed.redacted!r}")
        self.url = self.name = parsed.redacted
        self._args: dict[str, Any] = parsed.libpq
        self._probe()
        try:
            self._datastore = PostgresDatastore(
                **parsed.connect_args,
                connect_timeout=CONNECT_TIMEOUT_S,
                pool_size=pool_size,
                max_overflow=2,
                originator_id_type="text",
                enable_db_functions=False,
                lock_timeout=0,
            )
            _add_options(self._datastore, self._args)
            self.recorder = ChainedPostgresRecorder(self._datastore)
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreError(f"cannot open PostgreSQL store {self.url}: {exc}") from exc

    def _probe(self) -> None:
        """Fail fast, with one line, when the server is unreachable or refuses us; on the
        same connection, check the store's schema version (``schema.py``)."""
        try:
            conn = psycopg.connect(**self._args, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.url}: {first}",
                hint="check that the server runs and the URL (KEI_DB or --db) is right",
            ) from exc
        with conn:
            try:
                self._check_schema(conn, writable=not self.read_only)
            except psycopg.Error as exc:
                raise self._failed(exc) from exc

    @contextlib.contextmanager
    def _schema_conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A plain autocommit connection of its own (the steps run their own
        transactions)."""
        try:
            conn = psycopg.connect(**self._args, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        with conn:
            try:
                yield conn
            except psycopg.Error as exc:
                raise self._failed(exc) from exc

    def _fetch(self, c: Any, sql: str, params: Params, binary: bool) -> list[Row]:
        """``binary`` fetches in binary format, so bytea needs no hex decoding."""
        c.row_factory = tuple_row
        c.execute(sql, params, binary=binary)
        rows: list[Row] = c.fetchall()
        return rows

    def _failed(self, exc: Exception, *, appending: bool = False) -> StoreError:
        """Not initialised when kei's events table is missing (when appending: any table
        the append writes), else the driver's message."""
        text = str(exc)
        missing = "does not exist" in text and (appending or EVENTS_TABLE in text)
        if missing or isinstance(exc, psycopg.errors.UndefinedTable):
            return StoreNotInitialisedError(
                f"{self.url} holds no kei ledger", hint="run `kei init` first"
            )
        return StoreError(f"PostgreSQL store {self.url} failed: {text}")

    def create(self) -> None:
        try:
            self.recorder.create_table()
            self._stamp_created()
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreError(f"cannot create tables in {self.url}: {exc}") from exc

    def stream_versions(self, streams: Sequence[str]) -> dict[str, int]:
        rows = self._rows(ENDS_SQL, (list(dict.fromkeys(streams)),))
        return {str(s): int(v) for s, v in rows if v is not None}

    def open_waiter(self) -> _Listener:
        return _Listener(self)


class _Listener:
    """A long-lived LISTEN connection for following the log."""

    def __init__(self, store: PostgresStore) -> None:
        self._conn: psycopg.Connection[Any] | None = None
        try:
            self._conn = psycopg.connect(
                **store._args, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
            self._conn.execute(
                psycopg.sql.SQL("LISTEN {}").format(
                    psycopg.sql.Identifier(store.recorder.channel_name)
                )
            )
        except psycopg.Error as exc:
            log.warning("LISTEN unavailable (%s); following by polling", exc)
            self.close()

    def wait(self, timeout: float) -> bool:
        """True when a NOTIFY arrived; on any error it degrades to a plain timeout."""
        if self._conn is None:
            time.sleep(min(timeout, 0.05))
            return False
        try:
            return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as exc:
            log.warning("LISTEN failed (%s); falling back to polling", exc)
            self.close()
            return False

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                conn.close()
