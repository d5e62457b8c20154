"""kei's own store schema: its version, and the ordered steps that move it forward.

Version 1 is the layout every kei before store versions made with ``CREATE TABLE IF
NOT EXISTS``: ``kei_events``, ``kei_chain`` and, where present, ``kei_heads`` and
``kei_merkle_nodes``. The version lives where each database keeps such a thing:
SQLite's ``PRAGMA user_version`` (in the file header, written in the transaction that
writes it), and on PostgreSQL a row ``('store_version', N)`` of a ``kei_meta`` table.

- A store without a version whose tables look like version 1 is stamped 1 (on a
  writable open; a read-only one takes it as 1 and writes nothing). Anything else
  without a version is refused: kei does not guess.
- A store newer than ``code_version`` is refused on every open, with one line naming
  both versions: an older kei never reads or writes a layout it does not know.
- A store older than the code opens for reads (steps only add); writes are refused
  until ``kei migrate up`` ran the steps, each in one transaction that also moves the
  version, under the database's write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an
  advisory transaction lock): a killed run leaves the old version or the new one.

``STEPS`` is empty today: version 1 is the newest layout. The machinery is proved by
tests with their own step lists (``steps=`` everywhere).

Every function works on a plain DB-API connection in autocommit mode
(``sqlite3`` with ``isolation_level=None``, or psycopg with ``autocommit=True``), so
it manages its own transactions; values are formatted into the SQL only as integers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from msgspec import Struct

from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE, HEADS_TABLE, TREE_TABLE
from kei.errors import StoreError

log = logging.getLogger(__name__)

META_TABLE: Final = "kei_meta"
VERSION_KEY: Final = "store_version"
LOCK_KEY: Final = 0x6B65_6973  # "keis": one advisory lock for store schema changes
SQLITE, POSTGRES = "sqlite", "postgresql"

Run = Callable[[Any], None]
"""A step's work on one database: given the connection, inside the step's transaction."""


class StoreStep(Struct, frozen=True):
    """One store migration: what moves the store from ``version - 1`` to ``version``."""

    version: int
    summary: str
    sqlite: Run
    postgres: Run


STEPS: Final[tuple[StoreStep, ...]] = ()
"""The store migrations after version 1, in order (none yet)."""

_V1_COLUMNS: Final = {
    EVENTS_TABLE: ("originator_id", "originator_version", "topic", "state"),
    CHAIN_TABLE: ("position", "seq", "prev_hash", "hash"),
    HEADS_TABLE: ("position", "first_seq", "seq", "key_id", "signature"),
    TREE_TABLE: ("level", "idx", "hash", "last_position"),
}
_REQUIRED: Final = (EVENTS_TABLE, CHAIN_TABLE)


class StepDone(Struct, frozen=True):
    """A step that committed: the version before and after, and how long it took."""

    from_version: int
    to_version: int
    summary: str
    duration_us: int


def code_version(steps: Sequence[StoreStep] = STEPS) -> int:
    """The version this code writes: the last step's, or 1."""
    return steps[-1].version if steps else 1


def sql_step(*statements: str) -> Run:
    """A step's work as plain SQL statements, run in order."""

    def run(conn: Any) -> None:
        for statement in statements:
            conn.execute(statement)

    return run


def read_version(conn: Any, dialect: str) -> int:
    """The stored version; 0 when none was ever written. A value someone edited into
    something that is no version is an error naming it."""
    if dialect == SQLITE:
        raw: Any = conn.execute("PRAGMA user_version").fetchone()[0]
    else:
        if not conn.execute(f"SELECT to_regclass('{META_TABLE}') IS NOT NULL").fetchone()[0]:
            return 0
        row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = '{VERSION_KEY}'").fetchone()
        if row is None:
            return 0
        raw = row[0]
    try:
        version = int(raw)
    except (TypeError, ValueError):
        raise StoreError(
            f"the store's schema version {str(raw)[:40]!r} is not a number",
            hint=f"someone edited {META_TABLE}; restore it from a backup",
        ) from None
    if version < 0:
        raise StoreError(f"the store's schema version {version} is negative")
    return version


def refuse_newer(name: str, stored: int, steps: Sequence[StoreStep] = STEPS) -> None:
    """The one-line error of a store made by a newer kei."""
    code = code_version(steps)
    if stored > code:
        raise StoreError(
            f"{name} has store schema version {stored}, newer than the {code} this kei "
            "knows; nothing was read or written",
            hint="upgrade kei to open this store",
        )


def tables_exist(conn: Any, dialect: str) -> bool:
    """True when kei's events and chain tables exist."""
    return all(_has_table(conn, dialect, t) for t in _REQUIRED)


def check_v1(conn: Any, dialect: str, name: str) -> None:
    """Refuse a store without a version whose tables do not look like version 1."""
    for table, columns in _V1_COLUMNS.items():
        if not _has_table(conn, dialect, table):
            if table in _REQUIRED:
                raise StoreError(f"{name} has no {table} table: it is not a kei store")
            continue
        try:
            conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE 1 = 0").fetchall()
        except Exception as exc:  # the driver's "no such column", whatever its class
            _rollback(conn, dialect)
            raise StoreError(
                f"{name} has no store version and its {table} table is not kei's version 1 "
                f"({_first_line(exc)})",
                hint="open it with the kei that made it",
            ) from exc


def stamp_unversioned(conn: Any, dialect: str, name: str) -> int:
    """Stamp a store without a version as version 1, after checking its tables; returns
    the version found (another process may have stamped it meanwhile)."""
    _begin(conn, dialect)
    try:
        version = read_version(conn, dialect)
        if version == 0:
            check_v1(conn, dialect, name)
            _write_version(conn, dialect, 1)
            version = 1
            log.info("stamped %s as store schema version 1", name)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn, dialect)
        raise
    return version


def open_version(
    conn: Any, dialect: str, name: str, *, writable: bool, steps: Sequence[StoreStep] = STEPS
) -> int:
    """The version of the store being opened (0: no kei tables yet); refuses a newer
    store, and stamps (``writable``) or checks an unversioned one."""
    version = read_version(conn, dialect)
    refuse_newer(name, version, steps)
    if version or not tables_exist(conn, dialect):
        return version
    if writable:
        return stamp_unversioned(conn, dialect, name)
    check_v1(conn, dialect, name)
    return 1


def behind_error(name: str, stored: int, steps: Sequence[StoreStep] = STEPS) -> StoreError:
    """What a write to a store older than the code is refused with."""
    return StoreError(
        f"{name} has store schema version {stored}, older than the {code_version(steps)} "
        "this kei writes; nothing was written",
        hint="run `kei migrate up` first (reads keep working meanwhile)",
    )


def stamp_fresh(conn: Any, dialect: str, steps: Sequence[StoreStep] = STEPS) -> int:
    """A store whose tables were just created: run every step and write the code's
    version, unless a version is already there (an existing store)."""
    found = read_version(conn, dialect)
    if found:
        return found
    done = upgrade(conn, dialect, "new store", steps, start=1)
    return done[-1].to_version if done else _stamp_one(conn, dialect)


def _stamp_one(conn: Any, dialect: str) -> int:
    _begin(conn, dialect)
    try:
        if read_version(conn, dialect) == 0:
            _write_version(conn, dialect, 1)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn, dialect)
        raise
    return 1


def upgrade(
    conn: Any,
    dialect: str,
    name: str,
    steps: Sequence[StoreStep] = STEPS,
    *,
    start: int | None = None,
) -> list[StepDone]:
    """Run each pending step in its own transaction, which also writes its version;
    returns the steps that committed here (another runner's are skipped)."""
    done: list[StepDone] = []
    for step in steps:
        began = time.perf_counter_ns()
        _begin(conn, dialect)
        try:
            stored = read_version(conn, dialect) or (start or 0)
            refuse_newer(name, stored, steps)
            if stored != step.version - 1:
                conn.execute("COMMIT")
                continue
            (step.sqlite if dialect == SQLITE else step.postgres)(conn)
            _write_version(conn, dialect, step.version)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn, dialect)
            raise
        took = (time.perf_counter_ns() - began) // 1000
        done.append(StepDone(step.version - 1, step.version, step.summary, took))
        log.info("store %s migrated to schema version %d", name, step.version)
    return done


def _begin(conn: Any, dialect: str) -> None:
    if dialect == SQLITE:
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn.execute("BEGIN")
        conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")


def _rollback(conn: Any, dialect: str) -> None:
    try:
        conn.execute("ROLLBACK")
    except Exception:  # no transaction open: nothing to undo
        log.debug("no transaction to roll back")


def _write_version(conn: Any, dialect: str, version: int) -> None:
    if dialect == SQLITE:
        conn.execute(f"PRAGMA user_version = {int(version)}")
        return
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key text PRIMARY KEY, value text NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO {META_TABLE} (key, value) VALUES ('{VERSION_KEY}', '{int(version)}') "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    )


def _has_table(conn: Any, dialect: str, table: str) -> bool:
    if dialect == SQLITE:
        sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
    else:
        sql = f"SELECT to_regclass('{table}') IS NOT NULL"
    return bool(conn.execute(sql).fetchone()[0])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
