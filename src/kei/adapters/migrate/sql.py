"""The tracker tables' SQL, written once with each driver's placeholder, and the part of
a transaction every DB-API driver shares (reading and writing tracker rows).

The ``_kei_migrations`` DDL is upstream kei-migrate's, byte for byte in its columns
and types, so a table either tool created serves the other. ``_kei_migrations_started``
is kei's, created only on MySQL/MariaDB (``kei.domain.migrate.tracker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from kei.adapters.migrate.base import texts
from kei.domain.events.migrate import Direction
from kei.domain.migrate.tracker import (
    KEI_TABLES,
    STARTED_TABLE,
    TRACKER_TABLE,
    StartedRow,
    TrackerRow,
)

SERVER_TRACKER_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {TRACKER_TABLE} (
    version      BIGINT PRIMARY KEY,
    name         VARCHAR(255) NOT NULL,
    checksum     CHAR(64)     NOT NULL,
    applied_at   VARCHAR(32)  NOT NULL
)"""
SQLITE_TRACKER_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {TRACKER_TABLE} (
    version      INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    checksum     TEXT NOT NULL,
    applied_at   TEXT NOT NULL
)"""
STARTED_DDL: Final = f"""CREATE TABLE IF NOT EXISTS {STARTED_TABLE} (
    version      BIGINT PRIMARY KEY,
    name         VARCHAR(255) NOT NULL,
    direction    VARCHAR(8)   NOT NULL,
    checksum     CHAR(64)     NOT NULL,
    started_at   VARCHAR(32)  NOT NULL
)"""


NOT_KEI: Final = f"NOT IN {KEI_TABLES!r}"
"""The condition that leaves kei's tracker tables out of a schema digest."""


SELECT_ROWS: Final = (
    f"SELECT version, name, checksum, applied_at FROM {TRACKER_TABLE} ORDER BY version"
)
SELECT_STARTED: Final = (
    f"SELECT version, name, direction, checksum, started_at FROM {STARTED_TABLE} ORDER BY version"
)


class TrackerRows:
    """Reading and writing tracker rows through a DB-API connection; a dialect's
    transaction class adds how to begin, commit, run SQL and digest the schema."""

    placeholder: ClassVar[str] = "%s"
    """The driver's placeholder: ``?`` for sqlite3, ``%s`` for psycopg and PyMySQL."""
    has_started_table: bool = False

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _all(self, query: str) -> list[Sequence[Any]]:
        cur = self.conn.cursor()
        try:
            cur.execute(query)
            return list(cur.fetchall())
        finally:
            cur.close()

    def _do(self, query: str, params: Sequence[Any]) -> None:
        cur = self.conn.cursor()
        try:
            cur.execute(query, params)
        finally:
            cur.close()

    def _insert(self, table: str, columns: str, values: Sequence[Any]) -> None:
        marks = ", ".join([self.placeholder] * len(values))
        self._do(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)

    def _delete(self, table: str, version: int) -> None:
        self._do(f"DELETE FROM {table} WHERE version = {self.placeholder}", (version,))

    def rows(self) -> list[TrackerRow]:
        out = []
        for version, *rest in self._all(SELECT_ROWS):
            name, checksum, applied_at = texts(iter(rest))
            out.append(TrackerRow(int(version), name, checksum.rstrip(" "), applied_at))
        return out

    def started_rows(self) -> list[StartedRow]:
        if not self.has_started_table:
            return []
        out = []
        for version, *rest in self._all(SELECT_STARTED):
            name, direction, checksum, started_at = texts(iter(rest))
            way: Direction = "down" if direction == "down" else "up"
            out.append(StartedRow(int(version), name, way, checksum.rstrip(" "), started_at))
        return out

    def insert_row(self, row: TrackerRow) -> None:
        values = (row.version, row.name, row.checksum, row.applied_at)
        self._insert(TRACKER_TABLE, "version, name, checksum, applied_at", values)

    def delete_row(self, version: int) -> None:
        self._delete(TRACKER_TABLE, version)

    def mark_started(self, row: StartedRow) -> None:
        values = (row.version, row.name, row.direction, row.checksum, row.started_at)
        self._insert(STARTED_TABLE, "version, name, direction, checksum, started_at", values)

    def clear_started(self, version: int) -> None:
        self._delete(STARTED_TABLE, version)
