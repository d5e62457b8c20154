"""``event_counts``: how many events of each type the log holds.

The smallest real projection, proving the engine end to end: it reads every event
type, and its table is a plain counter. ``apply`` adds one per event; ``apply_page``
folds a page into a counter first and writes each type once, which gives the same
rows with far fewer statements (the engine prefers it).

Table (``<name>`` is the projection's name, ``event_counts`` by default):
``<name>_by_type``: ``type`` (text, primary key) -> ``count``.

Version 1 also counted events per stream in ``<name>_by_stream``. Nothing read it,
and upserting one random key per stream was a fifth of a rebuild's time on a million
events, so version 2 drops that table (``retired``).

Example::

    engine = ProjectionEngine(url, store, [EventCounts()])
    engine.catch_up()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, String

from kei.domain.log.recorded import RecordedEvent
from kei.projections.base import ALL_TYPES, KEY, NEEDED, OneTable, upsert_add

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class EventCounts(OneTable):
    """Counts of events by type."""

    version = 2
    event_types = ALL_TYPES
    suffix = "by_type"
    columns = (("type", String, KEY), ("count", BigInteger, NEEDED))

    def __init__(self, name: str = "event_counts") -> None:
        self.name = name
        self.retired = (f"{name}_by_stream",)

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        upsert_add(conn, self.table, [{"type": event.type, "count": 1}], add="count")

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        types = Counter(e.type for e in events)
        upsert_add(conn, self.table, _rows("type", types), add="count")


def _rows(key: str, counts: Counter[str]) -> list[dict[str, object]]:
    """Rows in key order, so statements touch keys in the same order on every run."""
    return [{key: k, "count": n} for k, n in sorted(counts.items())]
