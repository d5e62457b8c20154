"""``kei models list|resolve|price|chain|providers``: the model catalog (upstream kei-model).

Thin: load the catalog (``adapters/files/catalog.py``), ask ``kei.domain.catalog.catalog``, render.
Every price shown says whether the catalog vouches for it (``verified``) or not
(``UNVERIFIED: needs-verification`` / ``placeholder``); JSON carries ``price_vouched``.
Exit codes follow upstream kei-model (``exits.MODELS_EXITS``), else kei's table.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kei.adapters.cli.context import answering, command_group, is_tty
from kei.adapters.cli.exits import MODELS_EXITS
from kei.adapters.cli.limits import INT64_MAX
from kei.adapters.cli.options import (
    BudgetMicro,
    DryRun,
    JsonLines,
    JsonObject,
    ModelStatus,
    SpeedOpt,
    number,
)
from kei.adapters.cli.output import json_line, warn
from kei.adapters.files.catalog import load_catalog
from kei.app.ledger.tail import printable as safe
from kei.app.ledger.tail import terminal_text
from kei.domain.agents.money import MICRO_CENTS_PER_DOLLAR, format_cents_exact, format_usd
from kei.domain.catalog.catalog import (
    Catalog,
    Model,
)
from kei.domain.catalog.entries import pricing_dict
from kei.domain.catalog.pricing import TierCost
from kei.domain.catalog.sync import SyncedEntry
from kei.domain.events.payload import TokenUsage

models_app, register = command_group(
    "models", "The model catalog: list, resolve, price, fallback chains."
)

PrimaryModel = Annotated[str, typer.Argument(metavar="MODEL", help="The first model: id or alias.")]
CapOpt = Annotated[
    str | None,
    typer.Option("--cap", metavar="CAP[,CAP...]", help="Required capabilities, comma-separated."),
]


@contextlib.contextmanager
def _catalog(ctx: typer.Context) -> Iterator[Catalog]:
    """The catalog, for a command body whose errors exit with upstream's codes."""
    with answering(ctx, table=MODELS_EXITS) as g:
        yield load_catalog(g.settings().home)


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    provider: Annotated[
        str | None, typer.Option("--provider", metavar="PROVIDER", help="Only this provider.")
    ] = None,
    cap: CapOpt = None,
    status: Annotated[
        ModelStatus | None, typer.Option("--status", help="Only models with this status.")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", metavar="ROLE", help="Only models with this role tag.")
    ] = None,
    as_json: JsonLines = False,
) -> None:
    """List the catalog's models, with their prices and whether the catalog vouches for them."""
    with _catalog(ctx) as catalog:
        models = catalog.select(provider=provider, caps=_caps(cap), status=status, role=role)
        if as_json:
            for m in models:
                json_line(model_json(m))
        else:
            _table(("id", "provider", "status", "price per unit", "price status", "roles"),
                   [(m.id, m.provider, m.status, rates(m), price_mark(m), ",".join(m.role_tags))
                    for m in models])  # fmt: skip


@models_app.command("resolve")
def resolve(
    ctx: typer.Context,
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help="The role to find a model for.")
    ],
    budget_micro: BudgetMicro = None,
    cap: CapOpt = None,
    as_json: JsonObject = False,
) -> None:
    """The cheapest active model for a role, with the caps and within the budget."""
    with _catalog(ctx) as catalog:
        found = catalog.resolve(role, budget_micro=budget_micro, caps=_caps(cap))
        m = found.model
        if as_json:
            json_line({"model_id": m.id, "provider": m.provider, **_price_json(m),
                       "reason": found.reason})  # fmt: skip
        else:
            _say(f"{m.id} ({m.provider}) {rates(m)}, price {price_mark(m)}")
            _say(f"reason: {found.reason}")


def _count(flag: str, help: str) -> Any:
    """A token count ``kei models price`` takes: an int64 >= 0."""
    return number(flag, least=0, most=INT64_MAX, help=help)


_In = Annotated[int, _count("--input-tokens", "Input tokens, all of them: cached ones included.")]
_Out = Annotated[int, _count("--output-tokens", "Output tokens (or units), reasoning included.")]
_Read = Annotated[int, _count("--cache-read-tokens", "Of the input, tokens read from the cache.")]
_Write = Annotated[
    int, _count("--cache-write-tokens", "Of the input, tokens written to the cache.")
]
_Write1h = Annotated[
    int, _count("--cache-write-1h-tokens", "Of the cache writes, those kept 1 hour.")
]
_Reasoning = Annotated[int, _count("--reasoning-tokens", "Of the output, reasoning tokens.")]


@models_app.command("price")
def price(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(metavar="MODEL", help="Model id or alias.")],
    input_tokens: _In,
    output_tokens: _Out,
    cache_read: _Read = 0,
    cache_write: _Write = 0,
    cache_write_1h: _Write1h = 0,
    reasoning: _Reasoning = 0,
    speed: SpeedOpt = None,
    as_json: JsonObject = False,
) -> None:
    """Price a call from the catalog, tier by tier: input, cache writes (5 min, 1 h),
    cache reads, output and reasoning, at the long-context rates above the entry's
    threshold, or with --speed fast at its fast-mode rates. Each tier is floored to
    whole µ¢; the price is their sum."""
    usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens,
                       cache_read_tokens=cache_read, cache_write_tokens=cache_write,
                       cache_write_1h_tokens=cache_write_1h, reasoning_tokens=reasoning)  # fmt: skip
    with _catalog(ctx) as catalog:
        q = catalog.quote(model_id, usage, speed)
        m = q.model
        if as_json:
            json_line({"model_id": m.id, "input_tokens": q.input_tokens,
                       "output_tokens": q.output_tokens, "micro_cents": q.micro_cents,
                       "pricing_status": m.pricing.status, "long_context": q.long_context,
                       "fast": q.fast, "speed_unpriced": q.speed_unpriced,
                       "tiers": [_tier_json(t) for t in q.tiers], **_price_json(m)})  # fmt: skip
            return
        _say(f"{m.id}: {q.micro_cents} µ¢ = {format_cents_exact(q.micro_cents)} cents "
             f"(~{format_usd(q.micro_cents)}) for {_amount(m, q.input_tokens, q.output_tokens)}"
             f"; price {price_mark(m)}")  # fmt: skip
        if q.fast:
            _say("  fast-mode rates")
        elif q.speed_unpriced:
            _say(f"  no {speed} price for {m.id}: standard rates (a lower bound)")
        if m.pricing.unit == "token":
            if q.long_context and m.pricing.long_context is not None:
                _say(f"  long-context rates: input above "
                     f"{m.pricing.long_context.above_input_tokens} tokens")  # fmt: skip
            for t in q.tiers:
                _say(f"  {t.tier}: {t.tokens} tokens x {_usd(t.rate)}/Mtok = {t.micro_cents} µ¢")


def _tier_json(t: TierCost) -> dict[str, object]:
    return {"tier": t.tier, "tokens": t.tokens, "rate_per_mtok_micro": t.rate,
            "micro_cents": t.micro_cents}  # fmt: skip


@models_app.command("sync")
def sync(
    ctx: typer.Context,
    dry_run: DryRun = False,
    as_json: JsonObject = False,
) -> None:
    """Take the catalog's prices from the genai-prices database (`pip install
    'kei[prices]'`) into $KEI_HOME/prices.toml, each with the database's version.

    The package's bundled data is read, never the network: upgrade the package for
    newer prices. $KEI_HOME/models.toml still wins over a synced price.
    """
    from kei.adapters.files.prices import sync_prices

    with answering(ctx, table=MODELS_EXITS) as g:
        home = g.settings().home
        users = load_catalog(home, synced=False)  # the user's names stay the user's
        reserved = [name for m in users.models for name in (m.id, *m.aliases)]
        report = sync_prices(load_catalog(None), home, reserved=reserved, dry_run=dry_run)
        if as_json:
            json_line({"version": report.version, "path": None if report.path is None
                       else str(report.path), "models": [_synced_json(e) for e in report.entries],
                       "unmatched": list(report.unmatched)})  # fmt: skip
            return
        known = [e for e in report.entries if not e.added]
        priced = sum(e.pricing is not None for e in known)
        where = "nothing written (--dry-run)" if report.path is None else f"wrote {report.path}"
        _say(f"{report.version}: {priced} of {len(known) + len(report.unmatched)} catalog "
             f"models priced, {len(report.entries) - len(known)} models added; {where}")  # fmt: skip
        for e in known:
            state = "priced" if e.pricing is not None else f"skipped: {e.skipped}"
            ignored = f" (kei ignores its {', '.join(e.ignored)})" if e.ignored else ""
            _say(f"  {e.model_id}: {state} from {e.source_id}{ignored}")
        if report.unmatched:
            _say(f"  not in the database: {', '.join(report.unmatched)}")


def _synced_json(e: SyncedEntry) -> dict[str, object]:
    return {"model_id": e.model_id, "source_id": e.source_id, "priced": e.pricing is not None,
            "skipped": e.skipped, "ignored": list(e.ignored), "added": e.added}  # fmt: skip


@models_app.command("chain")
def chain(ctx: typer.Context, primary: PrimaryModel, as_json: JsonLines = False) -> None:
    """Follow a model's fallback links to the end; a cycle is an error (exit 3)."""
    with _catalog(ctx) as catalog:
        walk = catalog.chain(primary)
        if as_json:
            for step, m in enumerate(walk.models, 1):
                json_line({"step": step, **model_json(m)})
        else:
            _table(("step", "id", "provider", "status", "price per unit", "price status"),
                   [(str(i), m.id, m.provider, m.status, rates(m), price_mark(m))
                    for i, m in enumerate(walk.models, 1)])  # fmt: skip
        if walk.dangling is not None:
            warn(f"the chain ends at {walk.models[-1].id}: its fallback "
                 f"{walk.dangling!r} is not in the catalog")  # fmt: skip


@models_app.command("providers")
def providers(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """Active and deprecated model counts per provider."""
    with _catalog(ctx) as catalog:
        counts = catalog.providers()
        if as_json:
            for c in counts:
                json_line({"name": c.name, "active_count": c.active_count,
                           "deprecated_count": c.deprecated_count})  # fmt: skip
        else:
            _table(("provider", "active", "deprecated"),
                   [(c.name, str(c.active_count), str(c.deprecated_count)) for c in counts])  # fmt: skip


def model_json(m: Model) -> dict[str, object]:
    """A model as JSON: the catalog entry, plus ``price_vouched`` and ``price_entry``."""
    data = m.to_dict()
    data.update(_price_json(m))
    return data


def _price_json(m: Model) -> dict[str, object]:
    pricing = pricing_dict(m.pricing)
    return {"pricing": pricing, "price_vouched": m.pricing.vouched, "price_entry": m.price_digest}


def price_mark(m: Model) -> str:
    """``verified 2026-04-28`` (or ``verified genai-prices 0.2.3``), or
    ``UNVERIFIED: <status>`` for a price kei cannot vouch for."""
    p = m.pricing
    return (
        f"verified {p.verified_at or p.source_version}" if p.vouched else f"UNVERIFIED: {p.status}"
    )


def rates(m: Model) -> str:
    """``$3/$15 per Mtok`` (exact dollars), or ``$0.04 per image`` for generation models."""
    p = m.pricing
    if p.unit != "token":
        return f"{_usd(p.output_per_mtok_micro)} per {p.unit}"
    return f"{_usd(p.input_per_mtok_micro)}/{_usd(p.output_per_mtok_micro)} per Mtok"


def _usd(micro: int) -> str:
    text = format(Decimal(micro) / MICRO_CENTS_PER_DOLLAR, "f")
    return "$" + (text.rstrip("0").rstrip(".") if "." in text else text)


def _amount(m: Model, tokens_in: int, tokens_out: int) -> str:
    if m.pricing.unit == "token":
        return f"{tokens_in} input + {tokens_out} output tokens"
    return f"{tokens_out} x {m.pricing.unit}"


def _caps(cap: str | None) -> list[str]:
    return [c.strip() for c in (cap or "").split(",") if c.strip()]


def _say(line: str) -> None:
    """One line of catalog text (user files): escapes and newlines in it neutralised."""
    sys.stdout.write(terminal_text(line).replace("\n", "\\x0a") + "\n")
    sys.stdout.flush()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; aligned plain columns when piped."""
    rows = [[safe(str(c)) for c in row] for row in rows]
    if is_tty():
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        _say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
