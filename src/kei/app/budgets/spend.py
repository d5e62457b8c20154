"""What a scope spent in a period: one plain-SQL sum over the costs read model.

The same rows and rule as ``kei cost report`` (``app/cost_reads.py``): only ``current``
cost events count, so an amended cost counts once at its latest amount; a call's time
is its ``call_us`` (an import's own time, else when kei signed it); an unpriced call
counts as 0 and is counted apart. One statement for SQLite and PostgreSQL, on the
store's own connection, after :func:`caught_up` made sure the read models answer for
the whole log (with the CLI's seal key, their seals are checked first).

A ``tree:`` scope walks ``agents`` down the parent ids from the agent (a recursive
query, as ``kei agent tree``), so an agent forked below it later counts from then on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from msgspec import Struct

from kei.app import cost_reads
from kei.domain.budgets.periods import Window
from kei.domain.budgets.scopes import Scope
from kei.projections import names

if TYPE_CHECKING:
    from kei.adapters.store.base import EventStore
    from kei.app.ledger.ledger import Ledger
    from kei.domain.catalog.catalog import Catalog

_TREE: Final = (
    f"WITH RECURSIVE sub(id) AS (SELECT id FROM {names.AGENTS_TABLE} WHERE id = ? "
    f"UNION SELECT a.id FROM {names.AGENTS_TABLE} a JOIN sub ON a.parent_agent_id = sub.id) "
)
_WHERE: Final = {
    "all": "",
    "session": " AND session = ?",
    "project": " AND project = ?",
    "tree": " AND agent_id IN (SELECT id FROM sub)",
}


class Spend(Struct, frozen=True):
    """A scope's spend in one period: ``micro_cents`` over ``events`` current cost
    events (``unpriced`` of them counted as 0, ``speed_unpriced`` of them at standard
    rates), and ``so_far``, the part with a call time at or before the moment asked
    about (what a forecast extrapolates)."""

    micro_cents: int = 0
    events: int = 0
    unpriced: int = 0
    so_far: int = 0
    speed_unpriced: int = 0  # priced at standard rates: no rates for their speed


def caught_up(ledger: Ledger, scopes: list[Scope], seal_key: bytes | None) -> None:
    """Catch up the read models the scopes read: ``costs``, and ``agents`` for a tree."""
    needed = ["agents", "costs"] if any(s.kind == "tree" for s in scopes) else ["costs"]
    cost_reads.caught_up(ledger, seal_key=seal_key, only=needed)


def spend(store: EventStore, scope: Scope, window: Window, at_us: int) -> Spend:
    """What ``scope`` spent in ``window`` (read models caught up first: :func:`caught_up`)."""
    where, value = _WHERE[scope.kind], [scope.value]
    if scope.kind == "tree":
        return spend_where(store, where, [], window, at_us, head=(_TREE, (scope.value,)))
    return spend_where(store, where, value if "?" in where else [], window, at_us)


def spend_where(
    store: EventStore,
    where: str,
    params: Sequence[object],
    window: Window,
    at_us: int,
    *,
    head: tuple[str, tuple[object, ...]] = ("", ()),
) -> Spend:
    """The current cost rows ``where`` (an SQL condition to AND on, with ``params``;
    after ``head``, a CTE and its parameters) selects, summed over ``window``."""
    where, params = _within(where, [*head[1], at_us, *params], window)
    sql = (
        f"{head[0]}SELECT coalesce(sum(micro_cents), 0), count(*), coalesce(sum(unpriced), 0), "
        "coalesce(sum(CASE WHEN call_us <= ? THEN micro_cents ELSE 0 END), 0), "
        f"coalesce(sum(speed_unpriced), 0) FROM {names.COSTS_TABLE} WHERE state = 'current'{where}"
    )
    micro, events, unpriced, so_far, speed = store.select(sql, params)[0]
    # PostgreSQL sums bigint as numeric, hence the int()s.
    return Spend(int(micro), int(events), int(unpriced), int(so_far), int(speed))


def speed_unpriced_models(
    store: EventStore, scope: Scope, window: Window, catalog: Catalog | None = None
) -> dict[str, int]:
    """The models of the scope's costs in ``window`` priced at standard rates for want of
    rates at their speed, and how many of each (most first; an alias counted under its
    catalog model)."""
    head, params = (_TREE, [scope.value]) if scope.kind == "tree" else ("", list[object]())
    where = _WHERE[scope.kind] + " AND speed_unpriced = 1"
    if scope.kind in ("session", "project"):
        params.append(scope.value)
    where, params = _within(where, params, window)
    sql = (
        f"{head}SELECT model, count(*) FROM {names.COSTS_TABLE} "
        f"WHERE state = 'current'{where} GROUP BY model"
    )
    return cost_reads.canonical_counts(store.select(sql, params), catalog)


def _within(where: str, given: Sequence[object], window: Window) -> tuple[str, list[object]]:
    """``where`` and its parameters narrowed to call times in ``window``."""
    params = list(given)
    for bound, op in ((window.start_us, ">="), (window.end_us, "<")):
        if bound is not None:
            where += f" AND call_us {op} ?"
            params.append(bound)
    return where, params


def tree_members(store: EventStore, agent: str) -> set[str]:
    """The agent and every agent forked below it, as the ``agents`` read model holds them."""
    return {str(r[0]) for r in store.select(f"{_TREE}SELECT id FROM sub", [agent])}
