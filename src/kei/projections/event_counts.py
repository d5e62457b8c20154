"""``event_counts``: how many events of each type, and in each stream, the log holds.

The smallest real projection, proving the engine end to end: it reads every event
type, and its two tables are plain counters. ``apply`` adds one per event;
``apply_page`` folds a page into two counters first and writes each key once, which
gives the same rows with far fewer statements (the engine prefers it).

Tables (``<name>`` is the projection's name, ``event_counts`` by default):

- ``<name>_by_type``: ``type`` (text, primary key) -> ``count``
- ``<name>_by_stream``: ``stream`` (text, primary key) -> ``count``

Example::

    engine = ProjectionEngine(url, store, [EventCounts()])
    engine.catch_up()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, MetaData, String, Table

from kei.domain.recorded import RecordedEvent
from kei.projections.base import ALL_TYPES, upsert_add

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class EventCounts:
    """Counts of events by type and by stream."""

    version = 1
    event_types = ALL_TYPES

    def __init__(self, name: str = "event_counts") -> None:
        self.name = name
        self.by_type: Table | None = None
        self.by_stream: Table | None = None

    def define(self, metadata: MetaData) -> list[Table]:
        self.by_type = Table(
            f"{self.name}_by_type",
            metadata,
            Column("type", String, primary_key=True),
            Column("count", BigInteger, nullable=False),
        )
        self.by_stream = Table(
            f"{self.name}_by_stream",
            metadata,
            Column("stream", String, primary_key=True),
            Column("count", BigInteger, nullable=False),
        )
        return [self.by_type, self.by_stream]

    def _tables(self) -> tuple[Table, Table]:
        if self.by_type is None or self.by_stream is None:
            raise RuntimeError(f"projection {self.name} used before define()")
        return self.by_type, self.by_stream

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        by_type, by_stream = self._tables()
        upsert_add(conn, by_type, [{"type": event.type, "count": 1}], add="count")
        upsert_add(conn, by_stream, [{"stream": event.stream, "count": 1}], add="count")

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        by_type, by_stream = self._tables()
        types = Counter(e.type for e in events)
        streams = Counter(e.stream for e in events)
        upsert_add(conn, by_type, _rows("type", types), add="count")
        upsert_add(conn, by_stream, _rows("stream", streams), add="count")


def _rows(key: str, counts: Counter[str]) -> list[dict[str, object]]:
    """Rows in key order, so statements touch keys in the same order on every run."""
    return [{key: k, "count": n} for k, n in sorted(counts.items())]
