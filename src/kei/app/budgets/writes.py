"""Setting and clearing budgets, decided from the ``budgets`` stream alone.

As every write of kei: read the stream (each row checked: ``read_stream_checked``),
fold it into the budgets in force (``domain/budgets/rules.py``), decide, and append at
the version read, so a racing ``kei budget set`` makes this one read and decide again
(``retry_write``). Setting a budget that is already in force appends nothing; a
``tree:`` scope must name an agent the log holds (a typo would otherwise guard
nothing), while sessions and projects may be budgeted before their first cost.
"""

from __future__ import annotations

from msgspec import Struct

from kei.app.agent_writes import agent_stream
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.domain.budgets.rules import Budget, current_budgets, decide_clear, decide_set
from kei.domain.budgets.scopes import Scope, parse_scope
from kei.domain.events.budgets import BUDGETS_STREAM, BudgetCleared, BudgetSet, Period
from kei.errors import InputError


class SetResult(Struct, frozen=True):
    """The budget in force after ``kei budget set``, and the event that set it (None:
    it was in force already, nothing appended)."""

    budget: Budget
    event: str | None


def budgets_in_force(ledger: Ledger) -> dict[tuple[str, str], Budget]:
    """The budgets in force, keyed by (scope, period), from the checked ``budgets`` stream."""
    return _read(ledger)[1]


def has_budgets(ledger: Ledger) -> bool:
    """Was a budget ever set? One indexed read: every check after a cost write starts here."""
    return ledger.store.stream_version(BUDGETS_STREAM) > 0


def set_budget(ledger: Ledger, scope_text: str, period: Period, limit: int) -> SetResult:
    """Put ``limit`` µ¢ per ``period`` on the scope ``scope_text``."""
    scope = parse_scope(scope_text)
    _check_known(ledger, scope)

    def write() -> SetResult:
        version, current = _read(ledger)
        payload = decide_set(current, str(scope), period, limit)
        if payload is None:
            return SetResult(current[(str(scope), period)], None)
        recorded = ledger.append([NewEvent(BUDGETS_STREAM, payload, version)])[-1]
        budget = Budget(payload.scope, payload.period, payload.limit_micro_cents, recorded.version)
        return SetResult(budget, budget.name)

    return retry_write(ledger.retry, write, what="the budgets")


def clear_budget(ledger: Ledger, scope_text: str, period: Period | None) -> list[str]:
    """Remove the scope's budget for ``period`` (None: every period); the events' names."""
    scope = parse_scope(scope_text)

    def write() -> list[str]:
        version, current = _read(ledger)
        payloads = decide_clear(current, str(scope), period)
        batch = [NewEvent(BUDGETS_STREAM, p, version + i) for i, p in enumerate(payloads)]
        return [f"{e.stream}:{e.version}" for e in ledger.append(batch)]

    return retry_write(ledger.retry, write, what="the budgets")


def _read(ledger: Ledger) -> tuple[int, dict[tuple[str, str], Budget]]:
    events = ledger.read_stream_checked(BUDGETS_STREAM)
    folded = current_budgets(
        (e.version, p) for e in events if isinstance(p := e.payload(), BudgetSet | BudgetCleared)
    )
    return (events[-1].version if events else 0), folded


def _check_known(ledger: Ledger, scope: Scope) -> None:
    if scope.kind == "tree" and ledger.store.stream_version(agent_stream(scope.value)) == 0:
        raise InputError(
            f"no agent with id {scope.value}", hint="a tree: budget names a forked agent"
        )
