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
- A table marked ``kei_digest_if_rows`` (a read model's faults table) is left out
  while it is empty, so adding one changed no existing digest.
- The digest is SHA-256 over all of it; shown as ``sha256:<hex>``.

``digest_rows`` is that definition, row by row. ``state_digest`` computes the same
bytes a batch at a time, because it runs at the end of every replay and export over
millions of values: rows come straight from the driver's cursor (no SQLAlchemy
``Row`` per row), a batch whose values are all plain int/str/bytes/None skips the
per-value ``normalise`` (one type scan at C speed decides), and the batch is encoded
as one msgpack array whose header is dropped, which leaves exactly the concatenation
of the rows' own encodings.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import String, Table, select
from sqlalchemy.sql.elements import ColumnElement

from kei.projections.faults import DIGEST_IF_ROWS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect

_encode = msgspec.msgpack.Encoder().encode
_FETCH = 4096
_PLAIN: frozenset[type] = frozenset({int, str, bytes, type(None)})
_CURSOR_NAME = "kei_state_digest"

Batch = Sequence[Sequence[Any]]
Processor = Callable[[Any], Any] | None


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


def _header(name: str, columns: Sequence[str]) -> bytes:
    return _encode([str(name), [str(c) for c in columns]])


def digest_rows(tables: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """SHA-256 over ``(name, columns, rows)`` triples, given in name order: the
    definition, one row at a time (``digest_batches`` gives the same bytes faster)."""
    h = hashlib.sha256()
    for name, columns, rows in tables:
        h.update(_header(name, columns))
        for row in rows:
            h.update(_encode([normalise(v) for v in row]))
    return h.digest()


def digest_batches(tables: Iterable[tuple[str, Sequence[str], Iterable[Batch]]]) -> bytes:
    """``digest_rows`` with each table's rows given as batches (lists of rows)."""
    h = hashlib.sha256()
    for name, columns, batches in tables:
        h.update(_header(name, columns))
        for batch in batches:
            if batch:
                h.update(encode_batch(batch))
    return h.digest()


def encode_batch(batch: Batch) -> memoryview:
    """The concatenated msgpack encodings of the normalised rows of a non-empty batch.

    msgpack encodes an array as a header (1, 3 or 5 bytes, by length) followed by its
    elements' encodings, so encoding the batch once and skipping the header gives the
    same bytes as encoding row by row."""
    data = _encode(plain_batch(batch))
    n = len(batch)
    skip = 1 if n < 16 else 3 if n < 1 << 16 else 5
    return memoryview(data)[skip:]


def plain_batch(batch: Batch) -> Batch:
    """``batch`` with every value normalised; the batch itself when all already are."""
    if _PLAIN.issuperset(map(type, itertools.chain.from_iterable(batch))):
        return batch
    columns = [
        col if _PLAIN.issuperset(map(type, col)) else list(map(normalise, col))
        for col in zip(*batch, strict=True)
    ]
    return list(zip(*columns, strict=True))


def _order(conn: Connection, table: Table) -> list[ColumnElement[Any]]:
    keys: list[ColumnElement[Any]] = list(table.primary_key.columns)
    if not keys:
        raise ValueError(f"projection table {table.name} has no primary key")
    if conn.dialect.name != "postgresql":
        return keys
    return [k.collate("C") if isinstance(k.type, String) else k for k in keys]


def _processors(dialect: Dialect, table: Table) -> list[Processor]:
    """What SQLAlchemy would do to each column's raw driver value (``None``: nothing).

    Rows are read from the driver's cursor, so the conversions a ``Row`` would have
    applied (SQLite's integers into ``bool``, say) are applied here, column by column,
    and the values are the ones the definition sees."""
    return [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in table.columns]


def _processed(batch: Batch, processors: Sequence[Processor]) -> Batch:
    if not any(processors):
        return batch
    columns = [
        col if p is None else list(map(p, col))
        for p, col in zip(processors, zip(*batch, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))


def _batches(conn: Connection, table: Table) -> Iterator[Batch]:
    """``table``'s rows in digest order, ``_FETCH`` at a time, from the driver's cursor
    (a server-side cursor on PostgreSQL, so memory stays flat there too)."""
    dialect = conn.dialect
    sql = str(select(table).order_by(*_order(conn, table)).compile(dialect=dialect))
    processors = _processors(dialect, table)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    postgres = dialect.name == "postgresql"
    cursor = raw.cursor(name=_CURSOR_NAME) if postgres else raw.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(_FETCH):
            if batch:
                yield _processed(batch, processors)
    finally:
        cursor.close()


def _counts(conn: Connection, table: Table) -> bool:
    """Does ``table`` belong in the digest? Every table does, but one marked
    ``kei_digest_if_rows`` (a read model's faults, ``faults.py``) only once it has a
    row, so a read model without faults digests as it did before that table existed."""
    if not table.info.get(DIGEST_IF_ROWS):
        return True
    quote = conn.dialect.identifier_preparer.quote
    return conn.exec_driver_sql(f"SELECT 1 FROM {quote(table.name)} LIMIT 1").first() is not None


def state_digest(conn: Connection, tables: Sequence[Table]) -> bytes:
    """The digest of ``tables`` as ``conn`` sees them now (call it inside a transaction)."""
    ordered = sorted((t for t in tables if _counts(conn, t)), key=lambda t: t.name)
    return digest_batches((t.name, [c.name for c in t.columns], _batches(conn, t)) for t in ordered)
