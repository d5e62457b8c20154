"""The schema digest: one SHA-256 over what a database's catalogue says its schema is.

Each dialect adapter reads its catalogue (SQLite's ``sqlite_master``; the
``information_schema`` and ``pg_catalog`` of PostgreSQL; MySQL's ``information_schema``)
as named sections of rows: tables and columns, indexes, constraints, views, triggers,
routines. This module makes them one canonical value, so the same schema always
gives the same digest whatever order the server returned rows in: every value as text
(None stays null), rows sorted, sections sorted by name, encoded as JSON, hashed.
kei's own tracker tables are left out by the adapters, so the digest describes the
user's schema only. A digest says *whether* the schema changed, not *what* changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import msgspec

Row = Sequence[object]


def schema_digest(sections: Mapping[str, Iterable[Row]]) -> str:
    """Lowercase hex SHA-256 of the sections in canonical form."""
    canonical = [
        [name, sorted((_row(r) for r in rows), key=_key)] for name, rows in sorted(sections.items())
    ]
    return hashlib.sha256(msgspec.json.encode(canonical)).hexdigest()


def _row(row: Row) -> list[str | None]:
    return [None if v is None else _text(v) for v in row]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _key(row: Sequence[str | None]) -> list[tuple[bool, str]]:
    return [(v is not None, v or "") for v in row]
