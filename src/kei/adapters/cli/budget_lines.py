"""The budget check every cost-writing command runs, and how a crossing is said.

``after_costs`` runs ``app/budgets/check.after_costs`` on the command's open
ledger once its costs are committed, with the read models' seal key (loaded only when
a budget is set), and returns what it appended (the command says each crossing). It never fails the
command: a check that cannot run is logged by the app layer, which the CLI shows as a
``kei: WARNING: budgets not checked: ...`` line (``output.USER_WARNINGS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from kei.adapters.cli.context import open_ledger, seal_key, stderr

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.budgets.check import CheckResult, Crossing
    from kei.app.ledger.ledger import Ledger


def after_costs(
    settings: Settings, ledger: Ledger, *, also_us: Iterable[int] = (), added: int | None = None
) -> CheckResult:
    """Check the budgets after a cost write (``also_us``: the written events' times;
    ``added``: the micro-cents it added, when known: nothing added, nothing to check)."""
    from kei.app.budgets import check

    key = partial(seal_key, settings)  # read only when a budget is set
    return check.after_costs(ledger, seal_key=key, also_us=also_us, added=added)


def after_import(settings: Settings, appended: int) -> CheckResult:
    """The check after ``kei events import`` or ``kei replay`` appended ``appended``
    events to the store ``settings`` names (each opens its own ledger): as after any
    cost write, once, crossings said; nothing appended or no budget set, nothing done.
    The signing key is loaded only when a budget is set; a check that cannot run (no
    key, say) is one warning line, never a failure: the events are in."""
    from kei.app.budgets.check import CheckResult
    from kei.app.budgets.writes import has_budgets
    from kei.errors import KeiError

    if appended <= 0:
        return CheckResult()
    try:
        with open_ledger(settings) as ledger:
            if not has_budgets(ledger):
                return CheckResult()
        with open_ledger(settings, with_key=True) as ledger:
            result = after_costs(settings, ledger)
    except KeiError as exc:
        from kei.adapters.cli.output import warn

        warn(f"budgets not checked: {exc}; run `kei budget check`")
        return CheckResult(error=str(exc))
    say(result)
    return result


def say(result: CheckResult) -> None:
    """One stderr line per crossing ``result`` appended."""
    for crossing in result.crossings:
        stderr().print(crossing_line(crossing), markup=False)


def crossing_line(c: Crossing) -> str:
    """``kei: budget tree:a1 crossed 80%: $8.20 of $10.00 in 2026-03 (budget/3/2026-03:2)``."""
    from kei.app.ledger.tail import printable as safe
    from kei.domain.agents.money import format_usd

    p = c.payload
    return (
        f"kei: budget {safe(p.scope)} crossed {p.threshold_percent}%: "
        f"{format_usd(p.spent_micro_cents)} of {format_usd(p.limit_micro_cents)} "
        f"{period_text(p.period, p.period_key)} ({c.event})"
    )


def period_text(period: str, key: str) -> str:
    """``on 2026-03-01``, ``in 2026-03`` or ``in total``."""
    return {"day": f"on {key}", "month": f"in {key}"}.get(period, "in total")
