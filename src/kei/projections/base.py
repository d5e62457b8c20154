"""What a read model is: a named, versioned fold of log events into SQL tables.

A projection is pure logic over the connection it is handed: it defines its tables
once with SQLAlchemy Core (the same definition serves SQLite and PostgreSQL) and turns
each event into Core statements. It never opens a connection, never commits and never
reads the log itself; the engine (``kei.adapters.readmodels.engine``) does all of
that, verifies every event first and wraps each page in one transaction with the
projection's position, so ``apply`` runs exactly once per event.

Rules every projection follows:

- ``name`` is unique and every table it defines is called ``<name>_<something>``, so
  projections never share a table and the digest knows which tables are whose.
- ``version`` is bumped whenever the tables or the meaning of ``apply`` change; the
  engine then drops the tables and rebuilds them from the start of the log. Tables an
  earlier version had and this one does not are listed in an optional ``retired``
  attribute (names), and the engine drops them too.
- ``event_types`` lists the types it reads; other events are verified but never
  decoded for it. ``ALL_TYPES`` (``{"*"}``) means every type.
- Columns hold only integers, text, bytes, booleans or NULL (money is integer
  micro-cents, time integer microseconds), so the digest is the same on both stores;
  every table has a primary key.
- An index the fold itself never reads is made with ``deferred_index``: a rebuild
  drops it and the engine builds it once the projection has caught up, in one sort
  instead of a million random inserts. The rows, and so the digest, are the same.
- ``apply`` must be deterministic: the same events give the same rows, whether they
  arrive in one page or many. A projection may also define ``apply_page(conn,
  events)`` to fold a whole page at once (fewer statements); it must give exactly
  the rows that calling ``apply`` on each event would.

Example::

    class Streams:
        name, version, event_types = "streams", 1, ALL_TYPES

        def define(self, metadata: MetaData) -> list[Table]:
            self.t = Table("streams_seen", metadata,
                           Column("stream", String, primary_key=True), Column("n", BigInteger))
            return [self.t]

        def apply(self, conn: Connection, event: RecordedEvent) -> None:
            upsert_add(conn, self.t, [{"stream": event.stream, "n": 1}], add="n")
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, TypeAlias, runtime_checkable

from sqlalchemy import Column, Index, MetaData, Table, bindparam, select
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql.compiler import SQLCompiler

from kei.domain.log.recorded import RecordedEvent
from kei.projections import faults
from kei.projections.defined import DefinedTable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect
    from sqlalchemy.sql.dml import Insert
    from sqlalchemy.sql.elements import ClauseElement

ALL_TYPES: Final = frozenset({"*"})


@runtime_checkable
class Projection(Protocol):
    """A read model the engine keeps up to date; see the module docstring."""

    name: str
    version: int
    event_types: frozenset[str]

    def define(self, metadata: MetaData) -> list[Table]:
        """Create this projection's ``Table`` objects on ``metadata`` and return them."""
        ...

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        """Fold one verified event into the tables, with Core statements on ``conn``."""
        ...


KEY, NEEDED, MAYBE = "key", "needed", "maybe"  # primary key, NOT NULL, NULL allowed
ColumnSpec: TypeAlias = tuple[str, Any, str]
"""One column as a table of columns declares it: (name, SQL type, KEY | NEEDED | MAYBE)."""


def table_columns(spec: Iterable[ColumnSpec]) -> list[Column[Any]]:
    """The columns of a table of columns, in its order."""
    return [Column(n, kind, primary_key=how == KEY, nullable=how == MAYBE) for n, kind, how in spec]


class OneTable:
    """Base of projections kept in one main table (``main_table``) beside their
    faults table: ``define`` makes and binds both, so each subclass only says what
    its table holds: its ``suffix`` and its ``columns`` (a projection whose table has
    indexes overrides ``main_table`` instead)."""

    name: str
    suffix: ClassVar[str]
    """The main table is ``<name>_<suffix>``."""
    columns: ClassVar[tuple[ColumnSpec, ...]]
    table = DefinedTable()
    faults: Table

    def define(self, metadata: MetaData) -> list[Table]:
        self.table = self.main_table(metadata)
        self.faults = faults.faults_table(metadata, self.name)
        return [self.table, self.faults]

    def main_table(self, metadata: MetaData) -> Table:
        """This projection's table, ``<name>_<suffix>``, defined on ``metadata``."""
        return Table(f"{self.name}_{self.suffix}", metadata, *table_columns(self.columns))


class PagedTable(OneTable):
    """Base of one-table projections folded a page at a time: ``apply`` is
    ``apply_page`` of one event, so the two can never disagree."""

    _inserter: RowInserter | None = None

    @property
    def insert(self) -> RowInserter:
        """Inserts tuples into ``table``; made once per ``define``, kept on the instance."""
        table = self.table
        if self._inserter is None or self._inserter.table is not table:
            self._inserter = RowInserter(table)
        return self._inserter

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        self.apply_page(conn, [event])

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        raise NotImplementedError


DEFERRED: Final = "kei_deferred"


def deferred_index(name: str, *columns: str) -> Index:
    """An index only queries read, built after a rebuild rather than during it."""
    return Index(name, *columns, info={DEFERRED: True})


def deferred_indexes(tables: Sequence[Table]) -> list[Index]:
    """The deferred indexes of ``tables``, in a stable order."""
    found = [i for t in tables for i in t.indexes if i.info.get(DEFERRED)]
    return sorted(found, key=lambda i: str(i.name))


def wants(projection: Projection, event_type: str) -> bool:
    """Does ``projection`` read events of ``event_type``?"""
    types = projection.event_types
    return "*" in types or event_type in types


def apply_page(conn: Connection, projection: Projection, events: Sequence[RecordedEvent]) -> None:
    """Fold a page of events: the projection's ``apply_page`` if it has one, else
    ``apply``. A projection with a faults table (``faults.faults_table``) records the
    events it cannot fold there and skips them (``faults.fold_page``); one without
    raises, as before."""
    batch = getattr(projection, "apply_page", None)
    fold = batch if batch is not None else _one_by_one(projection)
    if getattr(projection, "faults", None) is not None:
        faults.fold_page(conn, projection.name, fold, events)
    else:
        fold(conn, events)


def _one_by_one(projection: Projection) -> faults.Fold:
    def fold(conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            projection.apply(conn, event)

    return fold


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) with one driver ``executemany``.

    The statement is SQLAlchemy's, compiled for the dialect of ``conn``; the rows go
    to the driver as they are. SQLAlchemy's own executemany rebuilds every row's
    parameters through its compiler, about 10 µs a row, which is most of a rebuild's
    time on a million rows. Columns hold plain values (see the rules above), so no
    type processing is skipped that a driver does not do itself.
    """
    if not rows:
        return
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        pick = operator.itemgetter(*(compiled.positiontup or []))
        params: list[Any] = [pick(r) for r in rows]
        if len(compiled.positiontup or []) == 1:
            params = [(p,) for p in params]
    else:
        params = list(rows)
    conn.exec_driver_sql(compiled.string, params)


class RowInserter:
    """Inserts rows given as tuples of every column of a table, in the table's order.

    ``insert_rows`` compiles its statement for every call and turns each dict into a
    tuple; a rebuild inserts a million rows, so a projection that builds its rows as
    tuples keeps one of these (on the instance, not in a global) and pays neither.
    The statement is SQLAlchemy's, compiled once per dialect with positional
    parameters (``?`` on SQLite, ``%s`` on PostgreSQL, whose drivers accept both
    styles), and the tuples go to the driver's ``executemany`` as they are, ``batch``
    rows to a statement (one multi-row ``VALUES``: a fifth less time in SQLite than a
    statement per row; at most 999 parameters, the oldest SQLite's limit).
    """

    def __init__(self, table: Table, *, max_batch: int = 64) -> None:
        self.table = table
        self.columns = tuple(c.name for c in table.columns)
        self.batch = max(1, min(max_batch, _MAX_PARAMS // len(self.columns)))
        self._sql: dict[tuple[str, str, int], str] = {}

    def __call__(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows``, in order (nothing for no rows)."""
        k = self.batch
        full = len(rows) - len(rows) % k
        if full:
            flat = [tuple(chain.from_iterable(rows[i : i + k])) for i in range(0, full, k)]
            conn.exec_driver_sql(self.sql(conn.dialect, k), flat)
        if full < len(rows):
            conn.exec_driver_sql(self.sql(conn.dialect, 1), rows[full:])

    def sql(self, dialect: Dialect, rows: int) -> str:
        """The positional INSERT of ``rows`` rows for ``dialect``, made on first use."""
        key = (dialect.name, dialect.driver, rows)
        found = self._sql.get(key)
        if found is None:
            one = positional_insert(self.table, self.columns, dialect)
            head, values, group = one.rpartition(" VALUES ")
            found = self._sql[key] = head + values + ", ".join([group] * rows)
        return found


_MAX_PARAMS: Final = 999


def positional_insert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with positional parameters in
    ``columns`` order, for ``dialect``."""
    compiled = positional(table.insert(), dialect, column_keys=list(columns))
    if tuple(compiled.positiontup or ()) != columns:
        raise ValueError(f"cannot compile a positional INSERT of {table.name} for {dialect.name}")
    return compiled.string


def positional(stmt: ClauseElement, dialect: Dialect, **kwargs: Any) -> SQLCompiler:
    """``stmt`` compiled for ``dialect`` with positional parameters, so the driver
    can be handed tuples: a named-parameter dialect (PostgreSQL's) is compiled as its
    ``format`` twin, the same SQL with ``%s`` placeholders, which its drivers accept."""
    target = dialect
    if not dialect.positional and isinstance(dialect, DefaultDialect):
        target = type(dialect)(paramstyle="format")
    compiled = stmt.compile(dialect=target, **kwargs)
    if not isinstance(compiled, SQLCompiler) or not compiled.positional:
        raise ValueError(f"cannot compile positional parameters for {dialect.name}")
    return compiled


class KeyLookup:
    """Every column of the rows of ``table`` whose ``column`` is one of some keys.

    A fold looks up the rows a page touches, thousands of keys a page. SQLAlchemy
    builds and compiles a bound parameter per key of an ``IN`` list on every call;
    here the statement is compiled once per dialect and list length, and lists are
    padded (with their last key, which changes nothing) to a power of two up to
    ``size``, so a rebuild compiles a handful of statements and then only binds.
    """

    def __init__(self, table: Table, column: str, size: int = 512) -> None:
        self.table, self.column, self.size = table, column, size
        self._sql: dict[tuple[str, str, int], str] = {}

    def __call__(self, conn: Connection, keys: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows, as tuples in column order (any order of rows)."""
        found: list[tuple[Any, ...]] = []
        for i in range(0, len(keys), self.size):
            chunk = list(keys[i : i + self.size])
            n = _padded(len(chunk), self.size)
            chunk += [chunk[-1]] * (n - len(chunk))
            found.extend(
                tuple(r) for r in conn.exec_driver_sql(self.sql(conn.dialect, n), tuple(chunk))
            )
        return found

    def sql(self, dialect: Dialect, n: int) -> str:
        """The SELECT with ``n`` keys for ``dialect``, compiled on first use."""
        key = (dialect.name, dialect.driver, n)
        found = self._sql.get(key)
        if found is None:
            t = self.table
            keys = [bindparam(f"k{i}", type_=t.c[self.column].type) for i in range(n)]
            stmt = select(t).where(t.c[self.column].in_(keys))
            found = self._sql[key] = positional(stmt, dialect).string
        return found


def _padded(n: int, cap: int) -> int:
    """The least power of two at or above ``n``, at most ``cap``."""
    return min(cap, 1 << (n - 1).bit_length())


def upsert_add(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    add: str | Sequence[str],
) -> None:
    """Insert ``rows``; where the primary key exists, add the row's ``add`` column(s)
    to the stored ones.

    One ``INSERT ... ON CONFLICT DO UPDATE`` (executemany), spelled for the dialect of
    ``conn``: SQLite and PostgreSQL share the syntax but not the SQLAlchemy construct.
    """
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    keys = [c.name for c in table.primary_key.columns]
    columns = [add] if isinstance(add, str) else list(add)
    excluded = stmt.excluded  # type: ignore[attr-defined]
    conn.execute(
        stmt.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=keys,
            set_={c: table.c[c] + excluded[c] for c in columns},
        ),
        list(rows),
    )


def dialect_insert(conn: Connection, table: Table) -> Insert:
    """The INSERT construct of ``conn``'s dialect, which has ``on_conflict_do_*``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise ValueError(f"projections support SQLite and PostgreSQL, not {conn.dialect.name}")
