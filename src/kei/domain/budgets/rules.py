"""The budget rules: amounts, which budgets are set, and which thresholds are due.

Pure. The service reads the ``budgets`` stream and a crossings stream, the costs read
model's spend, and asks these functions what to append:

- :func:`parse_amount`: a limit in dollars (``50``, ``12.5``, ``$0.75``) as integer
  micro-cents, exactly; more than 8 decimals (finer than 1 µ¢), 0, a sign, an
  exponent, a separator, NaN or more than $10,000,000 (the money field's bound) is
  refused in one line.
- :func:`current_budgets`: the ``budget.set`` / ``budget.cleared`` events folded into
  the budgets in force, one per (scope, period), each named by its event's version.
- :func:`decide_set`: a new ``budget.set``, or None when that exact budget is already
  in force (setting it again changes nothing, and re-arms nothing).
- :func:`decide_clear`: the ``budget.cleared`` events for a scope (one period, or
  every period it has a budget for); a scope without a budget is refused.
- :func:`due`: the thresholds a spend has reached that its crossings stream does not
  hold yet, in order: all of them when spend jumps past several at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from msgspec import Struct

from kei.domain.agents.money import MICRO_CENTS_PER_DOLLAR
from kei.domain.budgets.scopes import parse_scope
from kei.domain.events.budgets import THRESHOLDS, BudgetCleared, BudgetSet, Period
from kei.domain.events.fields import MONEY_MAX
from kei.domain.events.payload import Payload
from kei.errors import InputError

_DECIMALS: Final = 8  # 1 µ¢ is $0.00000001
_AMOUNT: Final = re.compile(r"\$?(?P<whole>[0-9]*)(?:\.(?P<frac>[0-9]*))?", re.ASCII)
_MAX_CHARS: Final = 40


class Budget(Struct, frozen=True):
    """A budget in force: ``budgets:<version>`` set ``limit_micro_cents`` on ``scope``
    per ``period``."""

    scope: str
    period: Period
    limit_micro_cents: int
    version: int

    @property
    def name(self) -> str:
        return f"budgets:{self.version}"


def parse_amount(text: str) -> int:
    """A positive dollar amount as micro-cents (see the module docstring)."""
    shown = ascii(text[:_MAX_CHARS]) + ("..." if len(text) > _MAX_CHARS else "")
    match = _AMOUNT.fullmatch(text) if len(text) <= _MAX_CHARS else None
    if match is None and text.startswith(("-", "$-")) and _digits(text.replace("-", "", 1)):
        raise InputError(f"budget amount {shown} is negative; the amount must be positive "
                         "(e.g. 50 or 12.50)")  # fmt: skip
    if match is None or not _digits(text):
        raise InputError(f"budget amount {shown} is not an amount in dollars (e.g. 50 or 12.50)")
    frac = match["frac"] or ""
    if len(frac) > _DECIMALS:
        raise InputError(
            f"budget amount {shown} has {len(frac)} decimals; at most {_DECIMALS} "
            "(1 µ¢ is $0.00000001)"
        )
    micro = int(match["whole"] or "0") * MICRO_CENTS_PER_DOLLAR + int(frac.ljust(_DECIMALS, "0"))
    if micro == 0:
        raise InputError(
            f"budget amount {shown} is zero", hint="to remove a budget use `kei budget clear SCOPE`"
        )
    if micro > MONEY_MAX:
        raise InputError(f"budget amount {shown} is above the most kei holds, $10000000")
    return micro


def _digits(text: str) -> bool:
    """Whether ``text`` is an amount as AMOUNT is written (at least one digit)."""
    match = _AMOUNT.fullmatch(text) if len(text) <= _MAX_CHARS else None
    return match is not None and bool(match["whole"] or match["frac"])


def current_budgets(events: Iterable[tuple[int, Payload]]) -> dict[tuple[str, str], Budget]:
    """The budgets in force after ``events`` (version and payload of each event of the
    ``budgets`` stream, in order), keyed by (scope, period). A ``budget.set`` kei would
    never write (a limit of 0 or less, a scope that does not parse), appended by some
    other writer, sets nothing: it must not stop every other budget's checks."""
    found: dict[tuple[str, str], Budget] = {}
    for version, p in events:
        if isinstance(p, BudgetSet) and p.limit_micro_cents > 0 and _parses(p.scope):
            found[(p.scope, p.period)] = Budget(p.scope, p.period, p.limit_micro_cents, version)
        elif isinstance(p, BudgetCleared):
            found.pop((p.scope, p.period), None)
    return found


def _parses(scope: str) -> bool:
    try:
        parse_scope(scope)
    except InputError:
        return False
    return True


def decide_set(
    current: dict[tuple[str, str], Budget], scope: str, period: Period, limit: int
) -> BudgetSet | None:
    """The ``budget.set`` to append, or None when this budget is already in force."""
    if limit <= 0 or limit > MONEY_MAX:
        raise InputError(f"a budget limit must be 1 to {MONEY_MAX:,} µ¢, found {limit}")
    held = current.get((scope, period))
    if held is not None and held.limit_micro_cents == limit:
        return None
    return BudgetSet(scope=scope, period=period, limit_micro_cents=limit)


def decide_clear(
    current: dict[tuple[str, str], Budget], scope: str, period: Period | None
) -> list[BudgetCleared]:
    """The ``budget.cleared`` events that remove ``scope``'s budget for ``period`` (None:
    for every period); refused when there is none to remove."""
    held = [b for (s, p), b in current.items() if s == scope and period in (None, p)]
    if not held:
        which = "" if period is None else f" per {period}"
        raise InputError(
            f"no budget{which} on {scope}", hint="see `kei budget status` for the budgets set"
        )
    return [BudgetCleared(scope=b.scope, period=b.period) for b in held]


def reached(spent: int, limit: int) -> tuple[int, ...]:
    """The thresholds ``spent`` has reached: k % when ``spent * 100 >= k * limit``."""
    return tuple(t for t in THRESHOLDS if spent * 100 >= t * limit)


def due(spent: int, limit: int, recorded: int) -> tuple[int, ...]:
    """The thresholds to append after the ``recorded`` first ones (the crossings
    stream's version): reached and not yet recorded, lowest first."""
    return reached(spent, limit)[recorded:]
