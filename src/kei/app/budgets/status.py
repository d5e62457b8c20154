"""``kei budget status``: each budget in force beside what its scope spent this period.

Reads only: the budgets from the checked ``budgets`` stream, the spend from the costs
read model (``spend.py``, the numbers ``kei cost report`` shows), the thresholds
already crossed from each budget's crossings stream. A threshold the spend has
reached that no event records yet (a check that failed, or costs that arrived
without one, such as a ``kei events import``) is listed as ``unrecorded``: ``kei
budget check`` appends it.

``remaining`` answers ``kei route select --budget SCOPE``: the least any of the
scope's budgets has left this period.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from kei.app.budgets import spend as spending
from kei.app.budgets.tail import read_tail
from kei.app.budgets.writes import budgets_in_force
from kei.app.ledger.ledger import Ledger
from kei.domain.budgets.periods import Window, forecast, period_window
from kei.domain.budgets.rules import Budget, reached
from kei.domain.budgets.scopes import parse_scope
from kei.domain.events.budgets import ThresholdCrossed, crossings_stream
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.domain.catalog.catalog import Catalog


class BudgetStatus(Struct, frozen=True):
    """One budget at the moment ``at_us``: its period, spend and crossings."""

    budget: Budget
    window: Window
    spent: spending.Spend
    crossed: tuple[int, ...]
    at_us: int
    # the models of the costs priced at standard rates for want of rates at their speed
    speed_models: dict[str, int] = {}

    @property
    def remaining(self) -> int:
        return self.budget.limit_micro_cents - self.spent.micro_cents

    @property
    def percent(self) -> float:
        return round(self.spent.micro_cents * 100 / self.budget.limit_micro_cents, 2)

    @property
    def forecast(self) -> int | None:
        return forecast(self.window, self.spent.so_far, self.spent.micro_cents, self.at_us)

    @property
    def unrecorded(self) -> tuple[int, ...]:
        """Thresholds reached with no crossing recorded yet."""
        hit = reached(self.spent.micro_cents, self.budget.limit_micro_cents)
        return tuple(t for t in hit if t not in self.crossed)

    def to_dict(self) -> dict[str, Any]:
        """The status in a JSON answer (``kei budget status --json``, MCP ``budget_status``)."""
        b, w = self.budget, self.window
        return {
            "budget": b.name, "scope": b.scope, "period": b.period, "period_key": w.key,
            "started_us": w.start_us, "ended_us": w.end_us,
            "limit_micro_cents": b.limit_micro_cents,
            "spent_micro_cents": self.spent.micro_cents, "percent": self.percent,
            "remaining_micro_cents": self.remaining, "forecast_micro_cents": self.forecast,
            "events": self.spent.events, "unpriced_events": self.spent.unpriced,
            "speed_unpriced_events": self.spent.speed_unpriced,
            "speed_unpriced_models": self.speed_models,
            "crossed": list(self.crossed), "unrecorded": list(self.unrecorded),
        }  # fmt: skip


def now_us() -> int:
    return time.time_ns() // 1_000


def status(
    ledger: Ledger,
    *,
    seal_key: bytes | None = None,
    at_us: int | None = None,
    catalog: Catalog | None = None,
) -> list[BudgetStatus]:
    """Every budget in force, oldest first, measured in the period holding ``at_us``
    (None: now); ``catalog`` names the models of speed-unpriced costs canonically."""
    moment = now_us() if at_us is None else at_us
    budgets = sorted(budgets_in_force(ledger).values(), key=lambda b: b.version)
    return measure(ledger, budgets, seal_key=seal_key, at_us=moment, catalog=catalog)


def measure(
    ledger: Ledger,
    budgets: list[Budget],
    *,
    seal_key: bytes | None,
    at_us: int,
    quick: bool = False,
    catalog: Catalog | None = None,
) -> list[BudgetStatus]:
    """``budgets`` measured in the periods holding ``at_us``. ``quick`` (the check after
    a cost write): the read models as they stand plus the log after them
    (``tail.py``), when they allow it, instead of a sealed catch-up."""
    if not budgets:
        return []
    scopes = {b.scope: parse_scope(b.scope) for b in budgets}
    tree = any(s.kind == "tree" for s in scopes.values())
    tail = read_tail(ledger, tree=tree) if quick else None
    if tail is None:
        spending.caught_up(ledger, list(scopes.values()), seal_key)
    found = []
    for b in budgets:
        window = period_window(b.period, at_us)
        spent = spending.spend(ledger.store, scopes[b.scope], window, at_us)
        if tail is not None:
            spent = tail.spend(scopes[b.scope], window, at_us, spent)
        models: dict[str, int] = {}
        if spent.speed_unpriced and tail is None:  # a report's question, not a check's
            models = spending.speed_unpriced_models(ledger.store, scopes[b.scope], window, catalog)
        found.append(BudgetStatus(b, window, spent, crossed(ledger, b, window.key), at_us, models))
    return found


def crossed(ledger: Ledger, budget: Budget, key: str) -> tuple[int, ...]:
    """The thresholds recorded for ``budget`` in period ``key``, in order (checked rows)."""
    events = ledger.read_stream_checked(crossings_stream(budget.version, key))
    return tuple(
        p.threshold_percent for e in events if isinstance(p := e.payload(), ThresholdCrossed)
    )


def remaining(
    ledger: Ledger, scope_text: str, *, seal_key: bytes | None = None, at_us: int | None = None
) -> int:
    """The least the scope's budgets have left this period (never below 0)."""
    scope = str(parse_scope(scope_text))
    held = [b for b in budgets_in_force(ledger).values() if b.scope == scope]
    if not held:
        raise InputError(
            f"no budget on {scope}", hint="set one with `kei budget set`, or give --budget-micro"
        )
    moment = now_us() if at_us is None else at_us
    found = measure(ledger, held, seal_key=seal_key, at_us=moment)
    return max(0, min(s.remaining for s in found))
