"""The memory commands: write, forget and compact as events; get, query and search the
``memory`` read model.

A write appends ``memory.written`` on the key's stream ``memory/<namespace>/<key>``
without an expected version: writes are independent facts and the later one in the
log is the value. Forgetting a key that holds no value is refused (nothing appended),
so a tombstone always hides something. Reads catch the projection up first.

Queries take upstream's shape (kind, key prefix, tags, since, limit; newest first)
with ``tag_any`` meaning any of the tags and ``tag_all`` all of them. Full-text search
uses SQLite's FTS5 or PostgreSQL's text search over values; every term must match.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.app.memory_writes import event_name, write_memory
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.events.memory import (
    MemoryCompacted,
    MemoryForgotten,
    MemoryWritten,
    compaction_stream,
    memory_stream,
)
from kei.domain.memory.query import Item, MemoryQuery
from kei.errors import InputError
from kei.projections.memory import Memory


class MemoryService(ReadModelService):
    """The memory commands over one ledger and its ``memory`` read model."""

    def __init__(self, ledger: Ledger, *, seal_key: bytes | None = None) -> None:
        self.projection = Memory()
        super().__init__(ReadModels(ledger, self.projection, name="memory", seal_key=seal_key))

    # -- writes ---------------------------------------------------------------------

    def write(self, payload: MemoryWritten) -> str:
        """Append one write; returns its ``STREAM:VERSION`` (``memory_writes``)."""
        return write_memory(self.ledger, payload)

    def forget(self, namespace: str, key: str, reason: str = "") -> str:
        """Append a tombstone at the version the value was read at, so it hides that
        value: a write or forget racing in between makes this one decide again."""
        return retry_write(
            self.ledger.retry,
            lambda: self._forget(namespace, key, reason),
            what=f"memory {namespace}/{key}",
        )

    def _forget(self, namespace: str, key: str, reason: str) -> str:
        stream = memory_stream(namespace, key)
        version = self.ledger.store.stream_version(stream)
        if self.get(namespace, key) is None:
            raise InputError(f"no value under {namespace}/{key}: nothing to forget")
        payload = MemoryForgotten(namespace=namespace, key=key, reason=reason)
        return event_name(self.ledger.append([NewEvent(stream, payload, version)])[-1])

    def compact(self, namespace: str, before_us: int) -> tuple[str, int]:
        """Hide the namespace's values written before ``before_us``; returns the event
        and how many values it hid."""
        hidden = len(self.query(MemoryQuery(namespace=namespace))) - len(
            self.query(MemoryQuery(namespace=namespace, since_us=before_us))
        )
        payload = MemoryCompacted(namespace=namespace, before_us=before_us)
        event = self.ledger.append([NewEvent(compaction_stream(namespace), payload)])[-1]
        return event_name(event), hidden

    # -- reads ----------------------------------------------------------------------

    def get(self, namespace: str, key: str) -> Item | None:
        i = self.projection.items
        found = self._items(sa.select(i).where(i.c.namespace == namespace, i.c.key == key))
        return found[0] if found else None

    def query(self, q: MemoryQuery) -> list[Item]:
        """Upstream's query, newest first."""
        return self._items(self._filtered(q))

    def search(self, text: str, q: MemoryQuery = MemoryQuery()) -> list[Item]:
        """Items whose value holds every term of ``text``, best match first."""
        terms = text.split()
        if not terms:
            raise InputError("search needs at least one word")
        i = self.projection.items
        query = self._filtered(q)
        if self.models.dialect == "sqlite":
            quoted = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
            fts = sa.table(self.projection.fts, sa.column("rowid"), sa.column("rank"))
            match = sa.text(f"{self.projection.fts} MATCH :terms").bindparams(terms=quoted)
            query = query.join(fts, fts.c.rowid == i.c.position).where(match)
            query = query.order_by(None).order_by(fts.c.rank, i.c.position.desc())
        else:
            vector = sa.func.to_tsvector(sa.literal_column("'simple'"), i.c.value)
            wanted = sa.func.plainto_tsquery(sa.literal_column("'simple'"), " ".join(terms))
            query = query.where(vector.op("@@")(wanted))
            rank = sa.func.ts_rank(vector, wanted)
            query = query.order_by(None).order_by(rank.desc(), i.c.position.desc())
        return self._items(query)

    def _filtered(self, q: MemoryQuery) -> sa.Select[Any]:
        i, t = self.projection.items, self.projection.tags
        query = sa.select(i)
        if q.namespace is not None:
            query = query.where(i.c.namespace == q.namespace)
        if q.kind is not None:
            query = query.where(i.c.kind == q.kind)
        if q.key_prefix:
            escaped = q.key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(i.c.key.like(escaped + "%", escape="\\"))
        if q.since_us is not None:
            query = query.where(i.c.written_us >= q.since_us)
        same = sa.and_(t.c.namespace == i.c.namespace, t.c.key == i.c.key)
        if q.tag_any:
            query = query.where(sa.exists().where(same, t.c.tag.in_(q.tag_any)))
        for tag in q.tag_all:
            query = query.where(sa.exists().where(same, t.c.tag == tag))
        query = query.order_by(i.c.written_us.desc(), i.c.position.desc())
        return query if q.limit is None else query.limit(q.limit)

    def _items(self, query: sa.Select[Any]) -> list[Item]:
        with self.models.catch_up().connect() as conn:
            result = conn.execute(query)
            keys = list(result.keys())
            rows = [dict(zip(keys, r, strict=True)) for r in result.all()]
            for row in rows:
                row["tags"] = self._tags_of(conn, row["namespace"], row["key"])
        return rows

    def _tags_of(self, conn: sa.Connection, namespace: str, key: str) -> list[str]:
        t = self.projection.tags
        query = sa.select(t.c.tag).where(t.c.namespace == namespace, t.c.key == key)
        return [r[0] for r in conn.execute(query.order_by(t.c.tag))]
