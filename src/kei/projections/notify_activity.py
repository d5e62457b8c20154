"""``notify_activity``: when each agent's stream last moved, for the stalled-agent check.

A rule ``on = "check:stalled-agent"`` asks for a running agent whose stream
``agent/<id>`` has had no event for ``idle_s`` seconds. The agents read model keeps
an agent's lifecycle, not the time of its last event (a cost, an outcome), so this
small fold keeps exactly that: per agent stream, its last event's version, type and
signed time, and whether the agent is still running (forked, not yet done, failed or
merged). Belongs to ``kei notify`` (not a default read model), like ``notify_outbox``.

Table ``notify_activity_agents``: ``stream`` (primary key), ``agent_id``,
``last_version``, ``last_type``, ``last_us``, ``running`` (1 or 0), ``forked_us``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Integer, String, select

from kei.domain.log.recorded import RecordedEvent
from kei.projections.base import ALL_TYPES, KEY, MAYBE, NEEDED
from kei.projections.notify_rows import KeyedRows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = "notify_activity"
AGENT_PREFIX: Final = "agent/"
_ENDS: Final = frozenset({"agent.completed", "agent.failed", "agent.merged"})


class NotifyActivity(KeyedRows):
    """Each agent stream's last event; see the module docstring."""

    event_types = ALL_TYPES
    suffix = "agents"
    columns = tuple(
        (n, kind, KEY if n == "stream" else MAYBE if n == "forked_us" else NEEDED)
        for n, kind in (("stream", String), ("agent_id", String), ("last_version", BigInteger),
                        ("last_type", String), ("last_us", BigInteger), ("running", Integer),
                        ("forked_us", BigInteger))
    )  # fmt: skip

    def __init__(self, name: str = NAME) -> None:
        super().__init__(name)

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        mine = [e for e in events if e.stream.startswith(AGENT_PREFIX)]
        if not mine:
            return
        stored = self.stored(conn, {e.stream for e in mine})
        rows = {k: list(v) for k, v in stored.items()}
        for e in mine:
            row = rows.get(e.stream)
            if row is None:
                row = rows[e.stream] = [e.stream, e.stream.removeprefix(AGENT_PREFIX), 0, "", 0,
                                        0, None]  # fmt: skip
            row[2], row[3], row[4] = e.version, e.type, e.timestamp_us
            if e.type == "agent.forked":
                row[5], row[6] = 1, e.timestamp_us
            elif e.type in _ENDS:
                row[5] = 0
        self.replace(conn, stored, [tuple(rows[k]) for k in sorted(rows)])

    def idle(self, conn: Connection, before_us: int, after_us: int) -> list[dict[str, Any]]:
        """Running agents whose last event was before ``before_us`` but not before
        ``after_us`` (a check notifies only what went quiet since it began watching)."""
        t = self.table
        query = (
            select(t)
            .where(t.c.running == 1, t.c.last_us < before_us, t.c.last_us >= after_us)
            .order_by(t.c.last_us)
        )
        return [dict(r._mapping) for r in conn.execute(query)]
