"""A deterministic digest of a projection's state, equal on SQLite and PostgreSQL.

Two read models built from the same events hold the same rows, so this digest is how
"incremental equals rebuilt" and "SQLite equals PostgreSQL" are checked, and what
``kei projections status`` shows. The rules:

- Tables are taken in name order; each contributes the msgpack array
  ``[table name, [column names]]`` followed by one msgpack array per row, so the
  concatenation is unambiguous (msgpack values are self-delimiting).
- Rows are read in primary-key order, comparing text byte by byte (PostgreSQL is told
  ``COLLATE "C"``; SQLite's BINARY collation already is), so the order never depends
  on a server's locale. Rows stream through the hash: memory stays flat.
- Values are normalised: int, str, bytes and None as they are, bool as int,
  memoryview as bytes. Anything else (floats, dates, decimals) is a ``TypeError``: a
  projection must store such values as integers or text (see ``base.py``).
- The digest is SHA-256 over all of it; shown as ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import String, Table, select
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_encode = msgspec.msgpack.Encoder().encode
_FETCH = 1000


def normalise(value: Any) -> int | str | bytes | None:
    """The one canonical form of a column value; TypeError for unsupported types."""
    if value is None or type(value) in (int, str, bytes):
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"projection column value {value!r} is not int, str, bytes, bool or None")


def digest_rows(tables: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """SHA-256 over ``(name, columns, rows)`` triples, given in name order."""
    h = hashlib.sha256()
    for name, columns, rows in tables:
        h.update(_encode([str(name), [str(c) for c in columns]]))
        for row in rows:
            h.update(_encode([normalise(v) for v in row]))
    return h.digest()


def _order(conn: Connection, table: Table) -> list[ColumnElement[Any]]:
    keys: list[ColumnElement[Any]] = list(table.primary_key.columns)
    if not keys:
        raise ValueError(f"projection table {table.name} has no primary key")
    if conn.dialect.name != "postgresql":
        return keys
    return [k.collate("C") if isinstance(k.type, String) else k for k in keys]


def _rows(conn: Connection, table: Table) -> Iterable[Sequence[Any]]:
    result = conn.execution_options(yield_per=_FETCH).execute(
        select(table).order_by(*_order(conn, table))
    )
    yield from result


def state_digest(conn: Connection, tables: Sequence[Table]) -> bytes:
    """The digest of ``tables`` as ``conn`` sees them now (call it inside a transaction)."""
    ordered = sorted(tables, key=lambda t: t.name)
    return digest_rows((t.name, [c.name for c in t.columns], _rows(conn, t)) for t in ordered)
