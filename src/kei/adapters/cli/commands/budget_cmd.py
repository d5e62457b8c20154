"""``kei budget set|clear|status|check``: spending limits per agent tree, session, project
or everything, and the 50/80/100 % thresholds they cross.

Thin: the rules are in ``kei.domain.budgets``, the work in ``kei.app.budgets``.
Confirmations and crossings go to stderr, ``status`` answers on stdout (tab-separated
lines; ``--json``: one object). Amounts are given in dollars (``50``, ``12.50``) and
kept as integer micro-cents; they are shown rounded to the cent, exact in ``--json``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.budget_lines import period_text, say
from kei.adapters.cli.context import answering, command_group, open_ledger, seal_key, stderr
from kei.adapters.cli.options import BudgetPeriod, JsonObject, now_us, time_us
from kei.adapters.cli.output import json_line
from kei.domain.agents.money import format_usd

if TYPE_CHECKING:
    from kei.app.budgets.status import BudgetStatus

budget_app, register = command_group(
    "budget", "Spending limits per agent tree, session, project or all, and their thresholds."
)

ScopeArg = Annotated[
    str,
    typer.Argument(
        metavar="SCOPE",
        help="tree:AGENT_ID, session:ID, project:PATH (as cost reports show it) or all.",
    ),
]
AmountArg = Annotated[
    str, typer.Argument(metavar="AMOUNT", help="The limit in dollars, e.g. 50 or 12.50.")
]
PeriodOpt = Annotated[
    BudgetPeriod, typer.Option("--period", help="Per UTC day, per UTC month, or in total.")
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="WHEN",
        help="Measure the period holding this moment (a date/time, unix seconds, or a "
        "duration back such as 1d); default: now.",
    ),
]
HEADER = "scope\tperiod\tkey\tspent\tlimit\tpercent\tremaining\tforecast\tcrossed"


def _per(period: str) -> str:
    return "in total" if period == "total" else f"per {period}"


# ``-5`` is taken as AMOUNT (not an unknown option) so that it is refused as negative.
@budget_app.command("set", context_settings={"ignore_unknown_options": True})
def set_cmd(
    ctx: typer.Context,
    scope: ScopeArg,
    amount: AmountArg,
    period: PeriodOpt = "total",
    as_json: JsonObject = False,
) -> None:
    """Limit what SCOPE may spend per period; then check it at once (a limit below what
    was spent crosses its thresholds now). Setting the same budget again appends nothing."""
    from kei.adapters.cli.budget_lines import after_costs
    from kei.app.budgets.writes import set_budget
    from kei.app.ledger.tail import printable as safe
    from kei.domain.budgets.rules import parse_amount

    with answering(ctx) as g:
        limit = parse_amount(amount)
        settings = g.settings()
        with open_ledger(settings, with_key=True) as ledger:
            done = set_budget(ledger, scope, period, limit)
            b = done.budget
            what = f"{safe(b.scope)} may spend {format_usd(b.limit_micro_cents)} {_per(b.period)}"
            unchanged = "; in force already, nothing appended" if done.event is None else ""
            stderr().print(f"kei: {b.name}: {what}{unchanged}", markup=False)
            checked = after_costs(settings, ledger)  # a failed check never fails the set
        say(checked)
        if as_json:
            json_line({"ok": True, "event": done.event, "budget": b.name, "scope": b.scope,
                       "period": b.period, "limit_micro_cents": b.limit_micro_cents,
                       "changed": done.event is not None,
                       "crossings": [c.to_dict() for c in checked.crossings]})  # fmt: skip


@budget_app.command("clear")
def clear_cmd(
    ctx: typer.Context,
    scope: ScopeArg,
    period: Annotated[
        BudgetPeriod | None,
        typer.Option("--period", help="Only the budget of this period (default: all of them)."),
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Remove SCOPE's budget (one period's, or every one); its crossings stay in the log."""
    from kei.app.budgets.writes import clear_budget
    from kei.app.ledger.tail import printable as safe

    with answering(ctx) as g, open_ledger(g.settings(), with_key=True) as ledger:
        names = clear_budget(ledger, scope, period)
    which = "every period" if period is None else _per(period)
    stderr().print(f"kei: {', '.join(names)}: cleared {safe(scope)}, {which}", markup=False)
    if as_json:
        json_line({"ok": True, "events": names, "scope": scope, "period": period})


@budget_app.command("status")
def status_cmd(ctx: typer.Context, at: AtOpt = None, as_json: JsonObject = False) -> None:
    """Each budget's period, spent, limit, percent, remaining, forecast and thresholds
    crossed (spend as `kei cost report` counts it)."""
    from kei.adapters.files.catalog import load_catalog
    from kei.app.budgets.status import status

    with answering(ctx) as g:
        at_us = now_us() if at is None else time_us(at, "--at")
        settings = g.settings()
        with open_ledger(settings) as ledger:
            found = status(ledger, seal_key=seal_key(settings), at_us=at_us,
                           catalog=load_catalog(settings.home))  # fmt: skip
        if as_json:
            json_line({"at_us": at_us, "budgets": [s.to_dict() for s in found]})
        elif found:
            sys.stdout.write("".join(f"{line}\n" for line in [HEADER, *map(status_line, found)]))
        else:
            stderr().print(
                "kei: no budgets set; set one with `kei budget set SCOPE AMOUNT`", markup=False
            )
        for s in found:
            for note in notes(s):
                stderr().print(note, markup=False)


@budget_app.command("check")
def check_cmd(ctx: typer.Context, at: AtOpt = None, as_json: JsonObject = False) -> None:
    """Append the thresholds crossed that are not recorded yet (what every cost write
    does; run it when one said `budgets not checked`, or after `kei events import`)."""
    from kei.app.budgets.check import check_budgets

    with answering(ctx) as g:
        at_us = None if at is None else time_us(at, "--at")
        settings = g.settings()
        with open_ledger(settings, with_key=True) as ledger:
            result = check_budgets(ledger, seal_key=seal_key(settings), at_us=at_us)
        say(result)
        count = len(result.crossings)
        stderr().print(
            f"kei: {result.budgets} budget(s) checked, {count} crossing(s) appended", markup=False
        )
        if as_json:
            crossings = [c.to_dict() for c in result.crossings]
            json_line({"budgets": result.budgets, "crossings": crossings})


def status_line(s: BudgetStatus) -> str:
    from kei.app.ledger.tail import printable as safe

    b, forecast = s.budget, s.forecast
    crossed = ",".join(f"{t}%" for t in s.crossed) or "-"
    return "\t".join([
        safe(b.scope), b.period, s.window.key, format_usd(s.spent.micro_cents),
        format_usd(b.limit_micro_cents), f"{s.percent:.1f}%", format_usd(s.remaining),
        "-" if forecast is None else format_usd(forecast), crossed,
    ])  # fmt: skip


def notes(s: BudgetStatus) -> list[str]:
    """What a status line cannot say: unpriced calls, calls priced at standard rates
    for want of rates at their speed, thresholds reached unrecorded."""
    from kei.app.ledger.tail import printable as safe

    where = f"{safe(s.budget.scope)} {period_text(s.budget.period, s.window.key)}"
    found = []
    if s.spent.unpriced:
        found.append(f"kei: {where}: {s.spent.unpriced} unpriced call(s) counted as $0.00")
    if s.speed_models:
        from kei.adapters.cli.commands.cost_cmd import speed_line

        found.append(speed_line(s.speed_models, f"{where}: "))
    if s.unrecorded:
        reached = ", ".join(f"{t}%" for t in s.unrecorded)
        found.append(
            f"kei: {where}: {reached} reached, not recorded; `kei budget check` appends it"
        )
    return found
