"""Cost over time, split by model or agent: what the dashboard's stacked chart draws.

Sums the ``costs`` read model's current rows (an amended cost counts once, at its
latest amount, as in every report) per UTC day and per model or agent, exactly, in
integer micro-cents. The read models must be caught up first (``cost_reads.caught_up``).
"""

from __future__ import annotations

from typing import Any, Final

from kei.adapters.store.base import EventStore
from kei.app.cost_reads import Window
from kei.projections import names

SPLITS: Final = {"model": "model", "agent": "agent_id"}


def series(store: EventStore, split: str, window: Window) -> list[dict[str, Any]]:
    """``[{"bucket": day, "values": {key: {"micro_cents": n}}}]``, every day from the
    first with cost to the last, oldest first, a day without cost with empty ``values``
    (the answer's ``json_form`` adds each ``usd``)."""
    column = SPLITS[split]
    where, params = window.sql()
    sql = (
        f"SELECT day, {column}, sum(micro_cents) FROM {names.COSTS_TABLE} "
        f"WHERE state = 'current'{where} GROUP BY day, {column} ORDER BY day, {column}"
    )
    days: dict[str, dict[str, dict[str, int]]] = {}
    for day, key, total in store.select(sql, params):
        days.setdefault(str(day), {})[str(key)] = {"micro_cents": int(total or 0)}
    return [{"bucket": day, "values": days.get(day, {})} for day in _every_day(list(days))]


def _every_day(days: list[str]) -> list[str]:
    """The ``YYYY-MM-DD`` days from the first of ``days`` to the last, each once."""
    from datetime import date, timedelta

    if not days:
        return []
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    return [(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)]
