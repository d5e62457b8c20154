"""``memory``: the values agents wrote, as of the latest write, tombstone or compaction.

Folds ``memory.written`` (the key's value becomes this one), ``memory.forgotten`` (the
key disappears until written again) and ``memory.compacted`` (the namespace's values
written before the cut-off disappear). Tags live in their own table, so a tag may hold
any character (upstream stored ``",t1,t2,"`` and a comma corrupted it) and ``tag_any``
can mean any and ``tag_all`` all.

Tables (``<name>`` is ``memory``):

- ``<name>_items``: primary key ``(namespace, key)``; ``kind``, ``value``, ``dna``,
  ``parent_dna``, ``written_us`` (when the write was signed), ``position`` (the write's
  log position, unique: the full-text row's id), ``version`` (its stream version).
- ``<name>_tags``: ``(namespace, key, tag)``.
- Full text: on SQLite an FTS5 table ``<name>_fts`` whose rowid is the item's
  ``position`` (kept beside the tables, not part of the digest: it is derived from
  ``value``); on PostgreSQL a GIN index over ``to_tsvector('simple', value)``.

Writes are rare next to agent and cost events, so each event is applied with a few
statements of its own rather than folded per page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    and_,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
)

from kei.domain.events.memory import MemoryCompacted, MemoryForgotten, MemoryWritten
from kei.domain.log.recorded import RecordedEvent
from kei.projections.base import deferred_index
from kei.projections.defined import DefinedTable
from kei.projections.faults import faults_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement

NAME: Final = "memory"


class Memory:
    """The memory read model; see the module docstring."""

    version = 1
    event_types = frozenset({"memory.written", "memory.forgotten", "memory.compacted"})
    items = DefinedTable()
    tags = DefinedTable()

    def __init__(self, name: str = NAME) -> None:
        self.name = name
        self.fts = f"{name}_fts"

    def define(self, metadata: MetaData) -> list[Table]:
        t = f"{self.name}_items"
        self.items = Table(
            t, metadata,
            Column("namespace", String, primary_key=True),
            Column("key", String, primary_key=True),
            Column("kind", String, nullable=False),
            Column("value", String, nullable=False),
            Column("dna", String), Column("parent_dna", String),
            Column("written_us", BigInteger, nullable=False),
            Column("position", BigInteger, nullable=False, unique=True),
            Column("version", BigInteger, nullable=False),
            deferred_index(f"{t}_kind_idx", "kind"),
            deferred_index(f"{t}_written_idx", "written_us"),
        )  # fmt: skip
        Index(
            f"{t}_fts_idx",
            func.to_tsvector(literal_column("'simple'"), self.items.c.value),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql")
        self.tags = Table(
            f"{self.name}_tags", metadata,
            Column("namespace", String, primary_key=True),
            Column("key", String, primary_key=True),
            Column("tag", String, primary_key=True),
            Index(f"{self.name}_tags_tag_idx", "tag"),
        )  # fmt: skip
        self._full_text_table(self.items)
        self.faults = faults_table(metadata, self.name)
        return [self.items, self.tags, self.faults]

    def _full_text_table(self, items: Table) -> None:
        create = f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.fts} USING fts5(value)"
        ddl = DDL(create).execute_if(dialect="sqlite")  # type: ignore[no-untyped-call]
        event.listen(items, "after_create", ddl)
        drop = f"DROP TABLE IF EXISTS {self.fts}"
        ddl = DDL(drop).execute_if(dialect="sqlite")  # type: ignore[no-untyped-call]
        event.listen(items, "before_drop", ddl)

    def apply(self, conn: Connection, event_: RecordedEvent) -> None:
        payload = event_.payload()
        if isinstance(payload, MemoryWritten):
            self._forget(conn, payload.namespace, payload.key)
            self._write(conn, payload, event_)
        elif isinstance(payload, MemoryForgotten):
            self._forget(conn, payload.namespace, payload.key)
        elif isinstance(payload, MemoryCompacted):
            self._compact(conn, payload.namespace, payload.before_us)
        else:  # the registry maps the types
            raise TypeError(f"{event_.type} at position {event_.position} is not a memory event")

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            self.apply(conn, e)

    def _write(self, conn: Connection, p: MemoryWritten, e: RecordedEvent) -> None:
        conn.execute(insert(self.items).values(
            namespace=p.namespace, key=p.key, kind=p.kind, value=p.value, dna=p.dna,
            parent_dna=p.parent_dna, written_us=e.timestamp_us, position=e.position,
            version=e.version,
        ))  # fmt: skip
        tags = sorted(set(p.tags))
        if tags:
            rows = [{"namespace": p.namespace, "key": p.key, "tag": tag} for tag in tags]
            conn.execute(insert(self.tags), rows)
        if conn.dialect.name == "sqlite":
            sql = f"INSERT INTO {self.fts}(rowid, value) VALUES (?, ?)"
            conn.exec_driver_sql(sql, (e.position, p.value))

    def _forget(self, conn: Connection, namespace: str, key: str) -> None:
        i, t = self.items, self.tags
        self._drop_text(conn, and_(i.c.namespace == namespace, i.c.key == key))
        conn.execute(delete(t).where(t.c.namespace == namespace, t.c.key == key))
        conn.execute(delete(i).where(i.c.namespace == namespace, i.c.key == key))

    def _compact(self, conn: Connection, namespace: str, before_us: int) -> None:
        i, t = self.items, self.tags
        old = and_(i.c.namespace == namespace, i.c.written_us < before_us)
        self._drop_text(conn, old)
        keys = select(i.c.key).where(old)
        conn.execute(delete(t).where(t.c.namespace == namespace, t.c.key.in_(keys)))
        conn.execute(delete(i).where(old))

    def _drop_text(self, conn: Connection, where: ColumnElement[bool]) -> None:
        if conn.dialect.name != "sqlite":
            return
        positions = [r[0] for r in conn.execute(select(self.items.c.position).where(where))]
        if positions:
            conn.exec_driver_sql(f"DELETE FROM {self.fts} WHERE rowid = ?",
                                 [(p,) for p in positions])  # fmt: skip
