"""``costs``: one row per cost event (recorded or amended), what ``kei cost report`` reads.

Reports group, filter by time and mark unverified prices, so the read model keeps every
cost event rather than running totals. An amendment does not erase the row it replaces;
it marks it ``superseded`` and adds its own ``current`` row, so every report counts an
amended cost exactly once, at its latest amount, and the history stays visible.

Table ``<name>_events`` (``<name>`` is ``costs``), primary key ``(stream, version)``,
the name a ``cost.amended`` event uses for the event it replaces:

- ``position`` (log position), ``agent_id``, ``provider``, ``model``, ``micro_cents``
- the five token counts (NULL: unknown, not zero), ``price_entry_id``, ``price_entry_hash``
- ``call_us``: when the call was recorded (an amendment inherits its target's, so amending
  never moves money between days or out of a ``--since`` window); ``day`` its UTC date
- ``state``: ``current``, ``superseded`` (an amendment replaced it) or ``ignored`` (an
  amendment whose target was unknown or already superseded, as the domain fold skips it:
  first amendment wins); ``superseded_by``: ``stream:version`` of the replacement
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec
from sqlalchemy import BigInteger, Column, MetaData, String, Table, select, tuple_

from kei.domain.events import CostAmended, CostRecorded, occurred_us
from kei.domain.recorded import RecordedEvent
from kei.projections import names
from kei.projections.base import PagedTable, deferred_index, insert_rows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = names.COSTS
CHUNK: Final = 400
_US_PER_DAY: Final = 86_400_000_000
TOKENS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
Row = dict[str, Any]


def event_name(stream: str, version: int) -> str:
    """How a cost event is named on the command line: ``STREAM:VERSION``."""
    return f"{stream}:{version}"


class Costs(PagedTable):
    """Every cost event, keyed by stream and version; see the module docstring."""

    version = names.COSTS_VERSION
    event_types = frozenset({"cost.recorded", "cost.amended"})

    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def define(self, metadata: MetaData) -> list[Table]:
        t = f"{self.name}_events"
        self._table = Table(
            t,
            metadata,
            Column("stream", String, primary_key=True),
            Column("version", BigInteger, primary_key=True),
            Column("position", BigInteger, nullable=False),
            Column("agent_id", String, nullable=False),
            Column("provider", String, nullable=False),
            Column("model", String, nullable=False),
            Column("micro_cents", BigInteger, nullable=False),
            *(Column(c, BigInteger) for c in TOKENS),
            Column("price_entry_id", String),
            Column("price_entry_hash", String),
            Column("call_us", BigInteger, nullable=False),
            Column("day", String, nullable=False),
            Column("state", String, nullable=False),
            Column("superseded_by", String),
            # Not (state, call_us): SQLite, without statistics, would take that index
            # for every `state = 'current'` report and read the table in index order,
            # four times slower than the scan it needs.
            deferred_index(f"{t}_call_idx", "call_us"),
            deferred_index(f"{t}_agent_idx", "agent_id"),
        )
        return [self._table]

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        decoded = [(e, e.payload()) for e in events if e.type in self.event_types]
        targets = {
            (p.supersedes_stream, p.supersedes_version)
            for _, p in decoded
            if isinstance(p, CostAmended)
        }
        known = self._load(conn, targets)
        new: dict[tuple[str, int], Row] = {}
        changed: dict[tuple[str, int], Row] = {}
        for event, payload in decoded:
            row = _row(event, payload)
            if isinstance(payload, CostAmended):
                key = (payload.supersedes_stream, payload.supersedes_version)
                target = new.get(key) or changed.get(key) or known.get(key)
                if target is None or target["state"] != "current":
                    row["state"] = "ignored"
                else:
                    row["call_us"], row["day"] = target["call_us"], target["day"]
                    target.update(state="superseded", superseded_by=event_name(*row["key"]))
                    if key not in new:
                        changed[key] = target
            new[row.pop("key")] = row
        self._write(conn, list(changed.values()), delete=True)
        self._write(conn, list(new.values()), delete=False)

    def _load(self, conn: Connection, keys: set[tuple[str, int]]) -> dict[tuple[str, int], Row]:
        t = self.table
        ordered = sorted(keys)
        found: dict[tuple[str, int], Row] = {}
        for i in range(0, len(ordered), CHUNK):
            where = tuple_(t.c.stream, t.c.version).in_(ordered[i : i + CHUNK])
            for r in conn.execute(select(t).where(where)).mappings():
                found[(r["stream"], r["version"])] = dict(r)
        return found

    def _write(self, conn: Connection, rows: list[Row], *, delete: bool) -> None:
        t = self.table
        for i in range(0, len(rows), CHUNK):
            chunk = rows[i : i + CHUNK]
            if delete:
                keys = [(r["stream"], r["version"]) for r in chunk]
                conn.execute(t.delete().where(tuple_(t.c.stream, t.c.version).in_(keys)))
            insert_rows(conn, t, chunk)


def _row(event: RecordedEvent, p: Any) -> Row:
    if not isinstance(p, CostRecorded | CostAmended):  # the registry maps the types
        raise TypeError(f"{event.type} at position {event.position} is not a cost event")
    ts = occurred_us(p, event.timestamp_us)
    return {
        "key": (event.stream, event.version),
        "stream": event.stream,
        "version": event.version,
        "position": event.position,
        "agent_id": p.agent_id,
        "provider": p.provider,
        "model": p.model,
        "micro_cents": p.micro_cents,
        **msgspec.structs.asdict(p.usage),  # exactly the TOKENS columns
        "price_entry_id": p.price_entry_id,
        "price_entry_hash": p.price_entry_hash,
        "call_us": ts,
        "day": utc_day(ts),
        "state": "current",
        "superseded_by": None,
    }


def utc_day(us: int) -> str:
    """The UTC date of ``us`` microseconds since the epoch, ``YYYY-MM-DD``."""
    return _day_text(us // _US_PER_DAY)


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    """Day ``day`` since the epoch as text; memoised, since a log spans few days."""
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
