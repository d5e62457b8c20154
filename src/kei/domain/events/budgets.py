"""Budgets: a spending limit per scope and period, and the thresholds it crosses.

Every ``budget.set`` and ``budget.cleared`` lives on the one stream ``budgets``, so
"is any budget set?" is one indexed read of that stream's version (the check after
every cost write stops there when it is 0), and a budget is named by the version of
its ``budget.set`` event: ``budgets:<N>``.

The crossings of budget ``N`` in one period go on ``budget/<N>/<period key>``, and
the k-th threshold (``THRESHOLDS``: 50, 80, 100 %) is always version k of that
stream. Two writers that race to append the same crossing both append at the version
they read; the store takes one and refuses the other, which reads again and finds it
there. So a crossing is appended at most once per (budget, threshold, period), and
because each writer appends every threshold its spend has reached in order, none is
skipped (``docs/events.md``, "Budgets").

Scopes (``domain/budgets/scopes.py``): ``tree:<agent id>``, ``session:<id>``,
``project:<path>`` or ``all``. Periods: ``day`` and ``month`` (UTC calendar days and
months, keys ``2026-03-01`` and ``2026-03``) and ``total`` (key ``total``).
"""

from __future__ import annotations

from typing import Final, Literal

from kei.domain.events.payload import Payload

BUDGETS_STREAM: Final = "budgets"
CROSSINGS_PREFIX: Final = "budget/"
THRESHOLDS: Final[tuple[int, ...]] = (50, 80, 100)
Period = Literal["day", "month", "total"]
PERIODS: Final[tuple[str, ...]] = ("day", "month", "total")


class BudgetSet(Payload, frozen=True, kw_only=True):
    """A limit of ``limit_micro_cents`` (> 0) on what ``scope`` may spend per
    ``period``; it replaces the scope's earlier budget of that period, if any."""

    scope: str
    period: Period
    limit_micro_cents: int


class BudgetCleared(Payload, frozen=True, kw_only=True):
    """The budget of ``scope`` for ``period`` is removed; nothing is checked for it."""

    scope: str
    period: Period


class ThresholdCrossed(Payload, frozen=True, kw_only=True):
    """``scope`` has spent ``threshold_percent`` % (or more) of budget
    ``budgets:<budget_version>`` in the period ``period_key``.

    ``spent_micro_cents`` is the spend the writer measured (from the costs read model,
    as ``kei cost report`` counts it; ``unpriced_events`` calls among it counted as 0)
    and ``limit_micro_cents`` the limit it was measured against.
    """

    scope: str
    period: Period
    period_key: str
    threshold_percent: int
    spent_micro_cents: int
    limit_micro_cents: int
    budget_version: int
    unpriced_events: int = 0


def crossings_stream(budget_version: int, period_key: str) -> str:
    """The stream of budget ``budgets:<budget_version>``'s crossings in one period."""
    return f"{CROSSINGS_PREFIX}{budget_version}/{period_key}"
