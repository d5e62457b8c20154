"""``kei cost record|amend|report``: what agents' model calls cost, in integer micro-cents
(in JSON, ``micro_cents`` beside an exact ``usd`` decimal: ``json_form.py``).

Thin: pricing and the report live in ``kei.app.costs``, the rules in
``kei.domain.agents.rules``. Confirmations go to stderr, data to stdout; ``--json`` prints
one object. Money is shown exactly (``… µ¢``) and as dollars rounded once, half up
(``kei.domain.agents.money``). Every report row that uses a catalog price the catalog cannot
vouch for says ``UNVERIFIED``. The report is a rich table on a terminal and
tab-separated lines when piped (``render.py``); ``--limit`` shows the biggest rows, the
TOTAL always covers every row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kei.adapters.cli.context import (
    answering,
    command_group,
    is_tty,
    open_ledger,
    seal_key,
    service_scope,
    stderr,
)
from kei.adapters.cli.options import (
    ChargeOptions,
    CostGroup,
    JsonObject,
    Since,
    Until,
    charge_options,
    number,
    since_us,
    time_us,
)
from kei.adapters.cli.output import json_line
from kei.domain.agents.money import format_usd
from kei.domain.catalog.catalog import Catalog
from kei.domain.events import CostAmended, CostRecorded, TokenUsage
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.adapters.store.base import EventStore
    from kei.app.budgets.check import CheckResult
    from kei.app.cost_reads import Report
    from kei.app.cost_writes import Charge
    from kei.app.costs import CostService

cost_app, register = command_group("cost", "Model-call costs: record, amend, report.")

T = TypeVar("T")

ByOpt = Annotated[CostGroup, typer.Option("--by", help="What a row totals.")]
LimitOpt = Annotated[
    int | None,
    number("--limit", help="Only the N biggest rows (the TOTAL covers all)."),
]


def _service(settings: Settings, *, write: bool = False) -> AbstractContextManager[CostService]:
    from kei.app.costs import CostService

    return service_scope(settings, CostService, write=write)


def cost_fields(
    catalog: Catalog, provider: str, model: str, usage: TokenUsage, given: int | None
) -> dict[str, Any]:
    """A cost event's provider, model, usage and amount: ``given`` micro-cents, else the
    catalog's price of ``usage`` and the entry that priced it, else unpriced (as
    ``kei demo`` records its costs too)."""
    from kei.app.cost_writes import price_request

    return _fields(price_request(catalog, provider, model, usage, given), provider, model, usage)


def _fields(charge: Charge, provider: str, model: str, usage: TokenUsage) -> dict[str, Any]:
    return {"provider": provider, "model": model, "usage": usage, **charge.fields()}


def _priced(
    settings: Settings,
    provider: str,
    model: str,
    usage: TokenUsage,
    given: int | None,
    speed: str | None = None,
) -> dict[str, Any]:
    """:func:`cost_fields`, the catalog read only when the amount was not given; the
    note of an unpriced call, or of one priced at standard rates, goes to stderr."""
    from kei.adapters.files.catalog import load_catalog
    from kei.app.cost_writes import price_request

    catalog = Catalog(()) if given is not None else load_catalog(settings.home)
    charge = price_request(catalog, provider, model, usage, given, speed)
    if charge.note is not None:
        stderr().print(f"kei: {charge.note}", markup=False)
    return _fields(charge, provider, model, usage)


def _done(
    request: CostRecorded | CostAmended, name: str, total: int, checked: CheckResult, as_json: bool
) -> None:
    """Say what was appended (``name``), the agent's new ``total`` and the budgets'
    crossings the write caused (``checked``)."""
    from kei.adapters.cli.budget_lines import say

    agent_id, micro, unpriced = request.agent_id, request.micro_cents, request.unpriced
    if as_json:
        json_line(
            {
                "ok": True,
                "agent_id": agent_id,
                "event": name,
                "micro_cents": None if unpriced else micro,
                "unpriced": unpriced,
                "speed": request.speed,
                "speed_unpriced": request.speed_unpriced,
                "total_micro_cents": total,
                "budget_crossings": [c.to_dict() for c in checked.crossings],
            }
        )
    amount = "unpriced" if unpriced else f"{micro} µ¢ ({format_usd(micro)})"
    stderr().print(
        f"kei: {name}: {amount}; agent {agent_id} total {total} µ¢ ({format_usd(total)})",
        markup=False,
    )
    say(checked)


@cost_app.command("record")
@charge_options
def record(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(metavar="ID", help="The agent that made the call.")],
    provider: Annotated[
        str, typer.Option("--provider", metavar="PROVIDER", help="The model's provider.")
    ],
    model: Annotated[str, typer.Option("--model", metavar="MODEL", help="The model id or alias.")],
    *,
    charge: ChargeOptions,
    as_json: JsonObject = False,
) -> None:
    """Append one cost.recorded event; tokens without an amount are priced from the catalog.

    Token counts follow OpenTelemetry GenAI: --tokens-in counts every input token,
    the cache reads and writes included (Anthropic reports its input_tokens apart from
    them: add them up); --tokens-out counts every output token, reasoning included.
    Each tier (input, cache write 5 min / 1 h, cache read, output, reasoning, long
    context) is priced at its own rate; --speed fast at the entry's fast-mode rates. A
    model the catalog does not price is recorded as unpriced, with a note; a fast call
    on an entry without fast rates at standard rates, marked speed_unpriced, with a note.
    """
    from kei.adapters.cli.budget_lines import after_costs
    from kei.app.cost_writes import record_cost, stream_total

    with answering(ctx) as g:
        settings = g.settings()
        fields = _priced(settings, provider, model, charge.usage(), charge.amount(), charge.speed)
        request = CostRecorded(agent_id=agent_id, **fields)
        with open_ledger(settings, with_key=True) as ledger:  # no read model: a hook's path
            event = record_cost(ledger, request)
            total = stream_total(ledger, agent_id)
            added = 0 if request.unpriced else request.micro_cents
            checked = after_costs(settings, ledger, also_us=[event.timestamp_us], added=added)
        name = f"{event.stream}:{event.version}"  # STREAM:VERSION, as `cost amend` takes it
        _done(request, name, total, checked, as_json)


@cost_app.command("amend")
@charge_options
def amend(
    ctx: typer.Context,
    event: Annotated[
        str, typer.Argument(metavar="EVENT", help="The cost event to replace, as STREAM:VERSION.")
    ],
    provider: Annotated[
        str | None, typer.Option("--provider", metavar="PROVIDER", help="Default: kept.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", metavar="MODEL", help="Default: kept.")
    ] = None,
    *,
    charge: ChargeOptions,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why it is amended.")
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Append one cost.amended event that replaces EVENT's amount (once; amend the latest)."""
    from kei.adapters.cli.budget_lines import after_costs
    from kei.app.costs import parse_event_name

    with answering(ctx) as g:
        stream, version = parse_event_name(event)
        amount = charge.amount()
        settings = g.settings()
        with _service(settings, write=True) as service:
            target = service.target(stream, version)
            old = target.payload()
            if not isinstance(old, CostRecorded | CostAmended):
                raise InputError(f"event {event} is {target.type}, not a cost event")
            usage = old.usage
            if charge.has_tokens:
                usage = charge.usage()
            elif amount is None:
                raise InputError("give the new amount (--micro-cents or --cents) or tokens")
            speed = old.speed if charge.speed is None else charge.speed
            fields = _priced(settings, provider or old.provider, model or old.model, usage,
                             amount, speed)  # fmt: skip
            request = CostAmended(
                agent_id=old.agent_id,
                supersedes_stream=stream,
                supersedes_version=version,
                reason=reason,
                **fields,
            )
            name = service.amend(request)
            total = service.agent_total(old.agent_id)
            checked = after_costs(settings, service.ledger)
        _done(request, name, total, checked, as_json)


@cost_app.command("report")
def report(
    ctx: typer.Context,
    by: ByOpt = "agent",
    since: Since = None,
    until: Until = None,
    limit: LimitOpt = None,
    as_json: JsonObject = False,
) -> None:
    """Exact totals per agent, provider, model (aliases under their model), UTC day or
    month, Claude Code session or project, or 5-hour block; amended costs count once."""
    from kei.adapters.cli import render
    from kei.app import cost_reads

    with answering(ctx) as g:
        start_us, end_us = since_us(since), None if until is None else time_us(until, "--until")
        result = read_costs(
            g.settings(),
            lambda s, c: cost_reads.report(s, by, c, cost_reads.Window(start_us, end_us)),
            only=["costs"],
        )
        if as_json:
            json_line(cost_reads.report_dict(result, start_us, limit, until_us=end_us))
        elif is_tty() and result.rows and render.fits(len(render.shown(result, limit))):
            from rich.console import Console

            Console(highlight=False).print(render.cost_table(result, limit))
        else:
            sys.stdout.write(render.report_text(result, limit))
            if len(render.shown(result, limit)) < len(result.rows):
                stderr().print(
                    f"kei: the {limit} biggest of {len(result.rows)} rows; TOTAL covers all",
                    markup=False,
                )
        _say_active(result)
        if result.speed_models:
            stderr().print(speed_line(result.speed_models), markup=False)


def speed_line(models: dict[str, int], where: str = "") -> str:
    """The one line naming the calls priced at standard rates for want of rates at
    their speed (``speed_unpriced``): how many, and which models."""
    from kei.app.ledger.tail import printable as safe

    counted = ", ".join(f"{safe(m)} ({n})" for m, n in models.items())
    return (f"kei: {where}{sum(models.values())} call(s) priced at standard rates, no rates "
            f"for their speed (speed_unpriced): {counted}; add a [models.pricing.fast] table "
            "in $KEI_HOME/models.toml")  # fmt: skip


def _say_active(result: Report) -> None:
    """The active 5-hour block's pace, on stderr (``--by block``)."""
    from kei.app.cost_reads import utc_minute

    for b in result.blocks:
        if b.active:
            pace = (
                ""
                if b.burn is None
                else (
                    f"; burning {format_usd(b.burn.hourly_micro_cents)}/h, "
                    f"{b.burn.tokens_per_minute} tokens/min, projected "
                    f"{format_usd(b.burn.projected_micro_cents)} by {utc_minute(b.end_us)}"
                )
            )
            stderr().print(
                f"kei: active block {utc_minute(b.start_us)}: "
                f"{format_usd(b.total.micro_cents)}{pace}",
                markup=False,
            )


def read_costs(
    settings: Settings,
    read: Callable[[EventStore, Catalog], T],
    *,
    only: Sequence[str] | None = None,
) -> T:
    """``read`` the store with the catalog that prices its costs, once the cost read
    models (``agents`` and ``costs``, or ``only`` these) answer for the whole log."""
    from kei.adapters.files.catalog import load_catalog
    from kei.app import cost_reads

    catalog = load_catalog(settings.home)
    with open_ledger(settings) as ledger:
        cost_reads.caught_up(ledger, seal_key=seal_key(settings), only=only)
        return read(ledger.store, catalog)
