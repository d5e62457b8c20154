"""``skills``: one row per ``skill.invoked`` event, what ``kei skill report`` reads.

Percentiles need every duration and ``--since`` needs every timestamp, so the read
model keeps the invocations themselves (upstream's ``skill_invocations`` table)
rather than running totals; the report folds them with ``kei.domain.agents.skills``.

Table ``<name>_invocations`` (``<name>`` is ``skills`` by default), primary key
``(skill, position)``, so one skill's rows are contiguous in the key:

- ``skill`` (text), ``position`` (the event's log position)
- ``success`` (bool), ``duration_ms`` (int or NULL: unknown, not zero)
- ``timestamp_us`` (when it happened: an import's upstream time, else the signed one), ``agent_id``, ``trajectory_id``

Example::

    skills = Skills()
    engine = ProjectionEngine(url, store, [skills])
    engine.catch_up(["skills"])
    with make_engine(url).connect() as conn:
        report = aggregate(skills.invocations(conn, since_us=0))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Boolean, String, func, select

from kei.domain.agents.skills import Invocation
from kei.domain.events import SkillInvoked
from kei.domain.log.recorded import RecordedEvent
from kei.projections.base import KEY, MAYBE, NEEDED, PagedTable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SKILL_INVOKED: Final = "skill.invoked"


class Skills(PagedTable):
    """Every skill invocation, keyed by skill and log position."""

    version = 1
    event_types = frozenset({SKILL_INVOKED})
    suffix = "invocations"
    columns = (
        ("skill", String, KEY), ("position", BigInteger, KEY), ("success", Boolean, NEEDED),
        ("duration_ms", BigInteger, MAYBE), ("timestamp_us", BigInteger, NEEDED),
        ("agent_id", String, MAYBE), ("trajectory_id", String, MAYBE),
    )  # fmt: skip

    def __init__(self, name: str = "skills") -> None:
        self.name = name

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        self.insert(conn, [_row(e) for e in events if e.type == SKILL_INVOKED])

    def invocations(self, conn: Connection, *, since_us: int = 0) -> list[Invocation]:
        """The invocations at or after ``since_us``, in skill then log order."""
        t = self.table
        query = (
            select(t.c.skill, t.c.success, t.c.timestamp_us, t.c.duration_ms)
            .where(t.c.timestamp_us >= since_us)
            .order_by(t.c.skill, t.c.position)
        )
        return [
            Invocation(r.skill, bool(r.success), int(r.timestamp_us), r.duration_ms)
            for r in conn.execute(query)
        ]

    def last_used_us(self, conn: Connection, skill: str) -> int | None:
        """The newest invocation's timestamp, or None for a skill never invoked."""
        t = self.table
        found = conn.execute(select(func.max(t.c.timestamp_us)).where(t.c.skill == skill))
        value = found.scalar()
        return None if value is None else int(value)


def _row(event: RecordedEvent) -> tuple[Any, ...]:
    """The invocation's row, in the table's column order."""
    p = event.payload()
    if not isinstance(p, SkillInvoked):  # the registry maps the type to this class
        raise TypeError(f"{event.type} at position {event.position} is not a SkillInvoked")
    origin = p.origin  # occurred_us, inlined: this runs once per invocation of the log
    ts = event.timestamp_us
    if origin is not None and origin.occurred_at_us is not None:
        ts = origin.occurred_at_us
    return (
        p.skill_name, event.position, p.success, p.duration_ms, ts, p.agent_id,
        p.trajectory_id,
    )  # fmt: skip
