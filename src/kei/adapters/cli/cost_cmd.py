"""``kei cost record|amend|report``: what agents' model calls cost, in integer micro-cents.

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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console

from kei.adapters.cli.context import handled, is_tty, open_ledger, seal_key, stderr
from kei.adapters.cli.limits import CENTS_MAX, COUNT_MAX, INT64_MAX, INT64_MIN
from kei.adapters.cli.output import json_line, stdout_closed_ok
from kei.domain.agents import skills as sk
from kei.domain.agents.money import MICRO_CENTS_PER_CENT, display_cents, format_usd
from kei.domain.events import CostAmended, CostRecorded, TokenUsage
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.cost_reads import Report
    from kei.app.costs import CostService

cost_app = typer.Typer(help="Model-call costs: record, amend, report.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Count = int | None
TokensIn = Annotated[
    Count, typer.Option("--tokens-in", min=INT64_MIN, max=INT64_MAX, help="Input tokens.")
]
TokensOut = Annotated[
    Count, typer.Option("--tokens-out", min=INT64_MIN, max=INT64_MAX, help="Output tokens.")
]
CacheRead = Annotated[
    Count,
    typer.Option("--cache-read-tokens", min=INT64_MIN, max=INT64_MAX, help="Cache-read tokens."),
]
CacheWrite = Annotated[
    Count,
    typer.Option("--cache-write-tokens", min=INT64_MIN, max=INT64_MAX, help="Cache-write tokens."),
]
Reasoning = Annotated[
    Count,
    typer.Option("--reasoning-tokens", min=INT64_MIN, max=INT64_MAX, help="Reasoning tokens."),
]
Micro = Annotated[
    Count,
    typer.Option(
        "--micro-cents",
        min=-INT64_MAX,
        max=INT64_MAX,
        help="The amount in micro-cents (1 cent = 1,000,000).",
    ),
]
Cents = Annotated[
    Count, typer.Option("--cents", min=-CENTS_MAX, max=CENTS_MAX, help="The amount in whole cents.")
]
GROUPS: Final = ("agent", "provider", "model", "day")  # as kei.app.costs


def register(app: typer.Typer) -> None:
    app.add_typer(cost_app, name="cost")


@contextmanager
def _service(settings: Settings, *, write: bool = False) -> Iterator[CostService]:
    from kei.app.costs import CostService

    with (
        open_ledger(settings, with_key=write) as ledger,
        CostService(ledger, seal_key=seal_key(settings)) as service,
    ):
        yield service


def _amount(micro: int | None, cents: int | None) -> int | None:
    if micro is not None and cents is not None:
        raise InputError("give --micro-cents or --cents, not both")
    return cents * MICRO_CENTS_PER_CENT if cents is not None else micro


def _charge(
    settings: Settings, provider: str, model: str, usage: TokenUsage, micro: int | None
) -> Any:
    from kei.adapters.files.catalog import load_catalog
    from kei.app.costs import price_request
    from kei.domain.catalog.catalog import Catalog

    catalog = Catalog(()) if micro is not None else load_catalog(settings.home)
    return price_request(catalog, provider, model, usage, micro)


def _done(service: CostService, agent_id: str, name: str, micro: int, *, as_json: bool) -> None:
    total = service.agent_total(agent_id)
    if as_json:
        json_line(
            {
                "ok": True,
                "agent_id": agent_id,
                "event": name,
                "micro_cents": micro,
                "total_micro_cents": total,
                "total_cost_cents": display_cents(total),
            }
        )
    stderr().print(
        f"kei: {name}: {micro} µ¢ ({format_usd(micro)}); agent {agent_id} total "
        f"{total} µ¢ ({format_usd(total)})",
        markup=False,
    )


@cost_app.command("record")
def record(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent that made the call.")],
    provider: Annotated[str, typer.Option("--provider", help="The model's provider.")],
    model: Annotated[str, typer.Option("--model", help="The model id or alias.")],
    tokens_in: TokensIn = None,
    tokens_out: TokensOut = None,
    cache_read: CacheRead = None,
    cache_write: CacheWrite = None,
    reasoning: Reasoning = None,
    micro_cents: Micro = None,
    cents: Cents = None,
    as_json: Json = False,
) -> None:
    """Append one cost.recorded event; tokens without an amount are priced from the catalog."""
    with handled(ctx) as g, stdout_closed_ok():
        usage = TokenUsage(
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
        )
        settings = g.settings()
        charge = _charge(settings, provider, model, usage, _amount(micro_cents, cents))
        request = CostRecorded(
            agent_id=agent_id,
            provider=provider,
            model=model,
            micro_cents=charge.micro_cents,
            usage=usage,
            price_entry_id=charge.entry_id,
            price_entry_hash=charge.entry_hash,
        )
        with _service(settings, write=True) as service:
            name = service.record(request)
            _done(service, agent_id, name, charge.micro_cents, as_json=as_json)


@cost_app.command("amend")
def amend(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(help="The cost event to replace, as STREAM:VERSION.")],
    provider: Annotated[str | None, typer.Option("--provider", help="Default: kept.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Default: kept.")] = None,
    tokens_in: TokensIn = None,
    tokens_out: TokensOut = None,
    cache_read: CacheRead = None,
    cache_write: CacheWrite = None,
    reasoning: Reasoning = None,
    micro_cents: Micro = None,
    cents: Cents = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is amended.")] = None,
    as_json: Json = False,
) -> None:
    """Append one cost.amended event that replaces EVENT's amount (once; amend the latest)."""
    from kei.app.costs import parse_event_name

    with handled(ctx) as g, stdout_closed_ok():
        stream, version = parse_event_name(event)
        amount = _amount(micro_cents, cents)
        counts = (tokens_in, tokens_out, cache_read, cache_write, reasoning)
        settings = g.settings()
        with _service(settings, write=True) as service:
            target = service.target(stream, version)
            old = target.payload()
            if not isinstance(old, CostRecorded | CostAmended):
                raise InputError(f"event {event} is {target.type}, not a cost event")
            usage = old.usage
            if any(c is not None for c in counts):
                usage = TokenUsage(**dict(zip(TokenUsage.__struct_fields__, counts, strict=True)))
            elif amount is None:
                raise InputError("give the new amount (--micro-cents or --cents) or tokens")
            prov, mod = provider or old.provider, model or old.model
            charge = _charge(settings, prov, mod, usage, amount)
            request = CostAmended(
                agent_id=old.agent_id,
                supersedes_stream=stream,
                supersedes_version=version,
                provider=prov,
                model=mod,
                micro_cents=charge.micro_cents,
                usage=usage,
                price_entry_id=charge.entry_id,
                price_entry_hash=charge.entry_hash,
                reason=reason,
            )
            name = service.amend(request)
            _done(service, old.agent_id, name, charge.micro_cents, as_json=as_json)


@cost_app.command("report")
def report(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help=" | ".join(GROUPS))] = "agent",
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only calls from then on: 30d, 12h, a date/time or unix seconds."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, max=COUNT_MAX, help="Only the N biggest rows (the TOTAL covers all)."
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Exact totals per agent, provider, model or UTC day; amended costs count once."""
    from kei.adapters.cli import render
    from kei.adapters.files.catalog import load_catalog
    from kei.app import cost_reads

    with handled(ctx) as g, stdout_closed_ok():
        now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
        since_us = None if since is None else sk.parse_since(since, now_us)
        settings = g.settings()
        catalog = load_catalog(settings.home)
        with open_ledger(settings) as ledger:
            cost_reads.caught_up(ledger, seal_key=seal_key(settings), only=["costs"])
            result = cost_reads.report(ledger.store, by, catalog, since_us)
        if as_json:
            json_line(report_dict(result, since_us, limit))
        elif is_tty() and result.rows and render.fits(len(render.shown(result, limit))):
            Console(highlight=False).print(render.cost_table(result, limit))
        else:
            sys.stdout.write(render.report_text(result, limit))
            if len(render.shown(result, limit)) < len(result.rows):
                stderr().print(
                    f"kei: the {limit} biggest of {len(result.rows)} rows; TOTAL covers all",
                    markup=False,
                )


def _money(micro: int) -> dict[str, Any]:
    return {"micro_cents": micro, "display_cents": display_cents(micro), "usd": format_usd(micro)}


def report_dict(result: Report, since_us: int | None, limit: int | None = None) -> dict[str, Any]:
    """One object: the shown rows, then totals over every row (``row_count`` of them)."""
    rows = [
        {
            result.by: r.key,
            "events": r.events,
            **_money(r.micro_cents),
            "unverified_events": r.unverified,
            "given_events": r.given,
        }
        for r in (result.rows if limit is None else result.rows[:limit])
    ]
    total = {f"total_{k}": v for k, v in _money(result.total).items()}
    return {
        "by": result.by,
        "since_us": since_us,
        "rows": rows,
        **total,
        "unverified": result.total_row.unverified,
        "row_count": len(result.rows),
        "limit": limit,
    }
