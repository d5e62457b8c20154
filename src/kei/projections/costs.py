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
- ``session`` and ``project``: the Claude Code session the call was billed in and its
  working directory (``cost.recorded``'s ``session`` and ``cwd``, NULL when not given);
  an amendment inherits its target's, as it inherits the time
- ``unpriced``: 1 when the catalog had no price for the call (its ``micro_cents`` 0
  means unknown), else 0
- ``speed_unpriced``: 1 when the call ran at a speed its price entry had no rates for
  (priced at the standard rates: ``cost.recorded``'s ``speed_unpriced``), else 0
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select, tuple_

from kei.domain.events import CostAmended, CostRecorded, Payload
from kei.domain.log.recorded import RecordedEvent
from kei.projections import names
from kei.projections.base import PagedTable, deferred_index

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
KEY, NEEDED, MAYBE = "key", "needed", "maybe"  # primary key, NOT NULL, NULL allowed
COLUMNS: Final = (
    ("stream", String, KEY), ("version", BigInteger, KEY), ("position", BigInteger, NEEDED),
    ("agent_id", String, NEEDED), ("provider", String, NEEDED), ("model", String, NEEDED),
    ("micro_cents", BigInteger, NEEDED), *((c, BigInteger, MAYBE) for c in TOKENS),
    ("price_entry_id", String, MAYBE), ("price_entry_hash", String, MAYBE),
    ("call_us", BigInteger, NEEDED), ("day", String, NEEDED), ("state", String, NEEDED),
    ("superseded_by", String, MAYBE), ("session", String, MAYBE), ("project", String, MAYBE),
    ("unpriced", BigInteger, NEEDED), ("speed_unpriced", BigInteger, NEEDED),
)  # fmt: skip
Row = list[Any]  # a stored or new row, in the table's column order (see ``_row``)
_AT: Final = {name: i for i, (name, _, _) in enumerate(COLUMNS)}  # a column's index in a Row
_CALL_US, _DAY, _STATE, _BY = _AT["call_us"], _AT["day"], _AT["state"], _AT["superseded_by"]
_SESSION, _PROJECT = _AT["session"], _AT["project"]
AMENDED: Final = "cost.amended"
CURRENT: Final = "current"
SUPERSEDED: Final = "superseded"
IGNORED: Final = "ignored"


def event_name(stream: str, version: int) -> str:
    """How a cost event is named on the command line: ``STREAM:VERSION``."""
    return f"{stream}:{version}"


class Costs(PagedTable):
    """Every cost event, keyed by stream and version; see the module docstring."""

    version = names.COSTS_VERSION
    event_types = frozenset({"cost.recorded", AMENDED})

    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def main_table(self, metadata: MetaData) -> Table:
        t = f"{self.name}_events"
        return Table(
            t,
            metadata,
            *(
                Column(n, kind, primary_key=how == KEY, nullable=how == MAYBE)
                for n, kind, how in COLUMNS
            ),
            # Not (state, call_us): SQLite, without statistics, would take that index
            # for every `state = 'current'` report and read the table in index order,
            # four times slower than the scan it needs.
            deferred_index(f"{t}_call_idx", "call_us"),
            deferred_index(f"{t}_agent_idx", "agent_id"),
        )

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        types = self.event_types
        if any(e.type == AMENDED for e in events):
            self._fold_amendments(conn, [(e, e.payload()) for e in events if e.type in types])
        else:  # most pages: every row is new and current, nothing to look up
            # Each payload is dropped as soon as its row is built: keeping a page of
            # them alive costs more in cycle collections than decoding them did.
            self.insert(conn, [_row(e, e.payload()) for e in events if e.type in types])

    def _fold_amendments(
        self, conn: Connection, decoded: list[tuple[RecordedEvent, Payload]]
    ) -> None:
        """Fold a page holding amendments: each marks its target superseded (first one
        wins) and inherits its time; targets of earlier pages are rewritten."""
        targets = {
            (p.supersedes_stream, p.supersedes_version)
            for _, p in decoded
            if isinstance(p, CostAmended)
        }
        known = self._load(conn, targets)
        new: dict[tuple[str, int], Row] = {}
        changed: dict[tuple[str, int], Row] = {}
        for event, payload in decoded:
            row = list(_row(event, payload))
            if isinstance(payload, CostAmended):
                key = (payload.supersedes_stream, payload.supersedes_version)
                target = new.get(key) or changed.get(key) or known.get(key)
                if target is None or target[_STATE] != CURRENT:
                    row[_STATE] = IGNORED
                else:
                    for i in (_CALL_US, _DAY, _SESSION, _PROJECT):
                        row[i] = target[i]
                    target[_STATE] = SUPERSEDED
                    target[_BY] = event_name(event.stream, event.version)
                    if key not in new:
                        changed[key] = target
            new[(event.stream, event.version)] = row
        self._replace(conn, list(changed.values()))
        self.insert(conn, [tuple(r) for r in new.values()])

    def _load(self, conn: Connection, keys: set[tuple[str, int]]) -> dict[tuple[str, int], Row]:
        t = self.table
        ordered = sorted(keys)
        found: dict[tuple[str, int], Row] = {}
        for i in range(0, len(ordered), CHUNK):
            where = tuple_(t.c.stream, t.c.version).in_(ordered[i : i + CHUNK])
            for r in conn.execute(select(t).where(where)):
                found[(r[0], r[1])] = list(r)
        return found

    def _replace(self, conn: Connection, rows: list[Row]) -> None:
        """Rewrite rows already stored (delete, then insert the new values)."""
        t = self.table
        for i in range(0, len(rows), CHUNK):
            keys = [(r[0], r[1]) for r in rows[i : i + CHUNK]]
            conn.execute(t.delete().where(tuple_(t.c.stream, t.c.version).in_(keys)))
        self.insert(conn, [tuple(r) for r in rows])


def _row(event: RecordedEvent, p: Payload) -> tuple[Any, ...]:
    """The ``current`` row of a cost event, in the table's column order."""
    if not isinstance(p, CostRecorded | CostAmended):  # the registry maps the types
        raise TypeError(f"{event.type} at position {event.position} is not a cost event")
    origin = p.origin  # occurred_us, inlined: this runs once per cost event of the log
    ts = event.timestamp_us
    if origin is not None and origin.occurred_at_us is not None:
        ts = origin.occurred_at_us
    u = p.usage  # exactly the TOKENS columns, in order
    where = (p.session, p.cwd) if isinstance(p, CostRecorded) else (None, None)
    return (
        event.stream, event.version, event.position, p.agent_id, p.provider, p.model,
        p.micro_cents, u.input_tokens, u.output_tokens, u.cache_read_tokens,
        u.cache_write_tokens, u.reasoning_tokens, p.price_entry_id, p.price_entry_hash,
        ts, _day_text(ts // _US_PER_DAY), CURRENT, None, *where, int(p.unpriced),
        int(p.speed_unpriced),
    )  # fmt: skip


def utc_day(us: int) -> str:
    """The UTC date of ``us`` microseconds since the epoch, ``YYYY-MM-DD``."""
    return _day_text(us // _US_PER_DAY)


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    """Day ``day`` since the epoch as text; memoised, since a log spans few days."""
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
