"""The SQL side of the projection engine: one SQLAlchemy engine on the log's database.

- The URL is the store's, parsed once (``StoreURL``): ``sqlite:///path`` is used as
  given; ``postgresql://`` (or ``postgres://``) becomes ``postgresql+psycopg://``, the
  psycopg 3 driver kei already uses.
- SQLite connections run real transactions: the driver's implicit transaction
  handling is off and every transaction starts with ``BEGIN IMMEDIATE``, so DDL
  (``rebuild`` drops and re-creates tables) is transactional too and a page's writer
  holds the write lock from its first statement (no lock upgrade deadlocks with the
  log's own writers); a busy database is waited for up to ``SQLITE_BUSY_TIMEOUT_S``.
  A connection given the ``SNAPSHOT`` execution option starts a plain ``BEGIN``
  instead: a read-only snapshot that blocks no writer.
- ``kei_projections(name, version, position, seq, hash)`` is the state table and
  ``kei_projection_seals(name, position, mac)`` the seals' (``seal``): the engine's own
  tables, one row per projection, declared together on ``bookkeeping``.
- SQLAlchemy and driver errors stop here: ``driver_errors`` turns them into a one-line
  ``StoreError`` chained with ``from``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from kei.adapters.store.urls import StoreURL
from kei.errors import StoreError

__all__ = [
    "SEAL_TABLE",
    "SNAPSHOT",
    "STATE_TABLE",
    "bookkeeping",
    "driver_errors",
    "make_engine",
    "seal_table",
    "sqlalchemy_url",
    "state_table",
]

STATE_TABLE: Final = "kei_projections"
SEAL_TABLE: Final = "kei_projection_seals"
# An execution option: this SQLite transaction only reads, so it starts with a plain
# BEGIN (a WAL snapshot) and holds no write lock while a seal's digest runs.
SNAPSHOT: Final = "kei_snapshot"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
# Read models are rebuilt from the log, so a commit lost to a power cut costs a
# catch-up, never data: WAL's NORMAL is durable enough and spares an fsync per page.
_SHARED: Final = ("PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=16384")
_SCRATCH: Final = ("PRAGMA journal_mode=MEMORY", "PRAGMA synchronous=OFF")

bookkeeping = sa.MetaData()
"""The engine's own tables, created together when an engine opens."""


def _per_projection(table: str, *columns: sa.Column[Any]) -> sa.Table:
    """A table of the engine's own with one row per projection, keyed by its name."""
    return sa.Table(table, bookkeeping, sa.Column("name", sa.String, primary_key=True), *columns)


state_table = _per_projection(
    STATE_TABLE,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("hash", sa.LargeBinary, nullable=True),
)
seal_table = _per_projection(
    SEAL_TABLE,
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("mac", sa.LargeBinary, nullable=False),
)


def sqlalchemy_url(url: str | StoreURL) -> str:
    """The SQLAlchemy URL of a kei store URL (psycopg 3 as the PostgreSQL driver)."""
    return StoreURL.parse(url).sqlalchemy


def make_engine(url: str | StoreURL, *, scratch: bool = False, schema: str | None = None) -> Engine:
    """An engine whose SQLite transactions are real ones (``BEGIN IMMEDIATE``, DDL too).

    ``scratch``: the SQLite file is private to this process and thrown away unless
    everything succeeds (a replay's rebuild), so its connections keep the rollback
    journal in memory and never sync (``SQLiteStore(journal="MEMORY")``). ``schema``:
    a PostgreSQL schema that is the engine's whole search path (``shadow.py``).
    """
    parsed = StoreURL.parse(url)
    args: dict[str, Any] = {"options": f"-c search_path={schema}"} if schema else {}
    if parsed.path is not None:
        args = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    engine = sa.create_engine(parsed.sqlalchemy, connect_args=args)
    if engine.dialect.name == "sqlite":
        pragmas = _SCRATCH if scratch else _SHARED

        @sa_event.listens_for(engine, "connect")
        def _no_implicit(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            for pragma in pragmas:
                dbapi_conn.execute(pragma)

        @sa_event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            snapshot = conn.get_execution_options().get(SNAPSHOT, False)
            conn.exec_driver_sql("BEGIN" if snapshot else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def driver_errors(doing: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver errors into ``StoreError("<doing>: <first line>")``."""
    try:
        yield
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        raise StoreError(f"{doing}: {first}") from exc


SCHEMA_LOCK_KEY = 0x6B65_6970  # "keip": one advisory lock for projection DDL


def lock_schema(conn: Connection) -> None:
    """Serialise table creation across engines (caller's transaction).

    PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent
    twin (the loser fails on the table's row type), so engines opening a fresh
    database at the same moment take a transaction-scoped advisory lock first.
    SQLite needs nothing: every transaction here starts with BEGIN IMMEDIATE.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
