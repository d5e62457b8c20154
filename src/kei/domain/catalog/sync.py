"""Prices from a maintained price database, as kei catalog entries (``kei models sync``).

Pure: the adapter (``adapters/files/prices.py``) reads the database (``genai-prices``)
into :class:`SourcePrice` values; this module turns each into the ``[models.pricing]``
table of kei's catalog and renders the ``prices.toml`` file the catalog reads between
the shipped catalog and the user's. Rules:

- Rates are USD per million tokens as exact decimals; kei keeps integer µ¢ per
  million, so a rate must be a whole number of µ¢ ($3.75 is 375,000,000), else the
  model is skipped with the reason (never rounded).
- ``input_mtok``, ``output_mtok``, ``cache_write_mtok`` (five minutes),
  ``cache_write_1h_mtok`` and ``cache_read_mtok`` map to kei's tiers; any other priced
  unit (audio tokens, web searches, requests) is not modelled by kei and is listed
  as ignored, so the note says what such calls would leave out.
- A tiered rate (all tokens at another rate once the input is above a threshold,
  the database's and kei's rule) becomes kei's ``long_context`` table. kei holds one
  threshold, so tiers at several thresholds, or several tiers, skip the model.
- Where the database prices no fast mode for a model, the catalog's own fast table
  (the shipped Opus 4.7 one, from Anthropic's fast-mode page) is kept, not dropped.
- A fast-mode price (the database's price variant ``when={"speed": "fast"}``, its
  rates laid over the standard ones as the database lays them) becomes kei's ``fast``
  table. kei's fast table has no tiers: a tiered or fractional fast rate leaves the
  table out and lists ``speed=fast`` as ignored (fast calls then cost standard rates,
  marked ``speed_unpriced``).
- The entry is ``verified`` with ``source_url`` the database's and ``source_version``
  its package version, so a cost priced by it names where the price came from.
- The database's exact names for a model (``gpt-4o-2024-08-06`` for gpt-4o) become
  aliases where no other model has the name (a known entry keeps its own aliases).
- A model of a covered provider that the catalog lacks is added whole (provider,
  status, name, context window, aliases), with no role
  or capability, so it prices calls but the router never picks it on its own.
- ``dated_snapshots`` is set where the database prices ``<id>-YYYYMMDD`` as the model
  itself (Anthropic's dated ids), so a transcript's dated model id finds its price.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal

from msgspec import Struct

__all__ = [
    "KEI_KEYS",
    "SOURCE_URL",
    "SourceModel",
    "SourcePrice",
    "SyncedEntry",
    "pricing_table",
    "render",
]

SOURCE_URL = "https://github.com/pydantic/genai-prices"
KEI_KEYS = {
    "input_mtok": "input_per_mtok_micro",
    "output_mtok": "output_per_mtok_micro",
    "cache_write_mtok": "cache_write_5m_per_mtok_micro",
    "cache_write_1h_mtok": "cache_write_1h_per_mtok_micro",
    "cache_read_mtok": "cache_read_per_mtok_micro",
}
_MICRO_CENTS_PER_USD = Decimal(100_000_000)
_SUBTABLES = ("long_context", "fast")
FAST_IGNORED = "speed=fast"  # listed as ignored when kei cannot hold the fast rates


class Tiered(Struct, frozen=True):
    """A rate that changes above thresholds of input tokens: ``(above, rate)`` pairs."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]


class SourceModel(Struct, frozen=True):
    """What the database says of a model the catalog lacks, beside its price: enough
    for a catalog entry that prices it (no roles or capabilities: never a router
    candidate until the user's models.toml says so)."""

    provider: str  # kei's provider
    display_name: str
    context_tokens: int
    deprecated: bool


class SourcePrice(Struct, frozen=True):
    """One model's current prices in the database: price key -> USD per Mtok.
    ``dated_snapshots``: the database prices ``<id>-YYYYMMDD`` as this model;
    ``aliases``: every alias the entry should have (kei's and the database's exact
    names for the model), or () to leave them as they are."""

    model_id: str  # kei's id
    source_id: str  # the database's id for the model
    rates: Mapping[str, Decimal | Tiered]
    dated_snapshots: bool = False
    aliases: tuple[str, ...] = ()
    added: SourceModel | None = None  # set for a model the catalog lacks
    fast: Mapping[str, Decimal | Tiered] | None = None  # the rates in fast mode, if priced
    # the catalog's own fast table, kept when the database prices no fast mode
    kept_fast: Mapping[str, object] | None = None


class SyncedEntry(Struct, frozen=True):
    """What the sync made of one model: its pricing table, or why there is none;
    ``fields`` are the entry's other keys written beside it (all of them for a model
    the sync adds, ``added``)."""

    model_id: str
    source_id: str
    pricing: dict[str, object] | None
    skipped: str | None = None
    ignored: tuple[str, ...] = ()
    fields: dict[str, object] = {}
    added: bool = False


def pricing_table(price: SourcePrice, version: str) -> SyncedEntry:
    """The kei pricing table of ``price`` (the module rules)."""
    ignored = tuple(sorted(k for k in price.rates if k not in KEI_KEYS))
    rates = {k: v for k, v in price.rates.items() if k in KEI_KEYS}
    if "input_mtok" not in rates or "output_mtok" not in rates:
        return _skip(price, "no input or output token price", ignored)
    thresholds = {t for v in rates.values() if isinstance(v, Tiered) for t in _starts(v)}
    if len(thresholds) > 1 or any(isinstance(v, Tiered) and len(v.tiers) != 1
                                  for v in rates.values()):  # fmt: skip
        return _skip(price, "tiers at more than one threshold", ignored)
    table: dict[str, object] = {}
    long: dict[str, object] = {}
    for key in (k for k in KEI_KEYS if k in rates):  # kei's order, whatever the source's
        value = rates[key]
        base = value.base if isinstance(value, Tiered) else value
        above = value.tiers[0][1] if isinstance(value, Tiered) else value
        micro, micro_above = _micro(base), _micro(above)
        if micro is None or micro_above is None:
            return _skip(price, f"{key} {base} is not a whole number of µ¢", ignored)
        table[KEI_KEYS[key]] = micro
        long[KEI_KEYS[key]] = micro_above
    table.update(status="verified", source_url=SOURCE_URL, source_version=version)
    if thresholds:
        table["long_context"] = {"above_input_tokens": thresholds.pop(), **long}
    fast = _fast_table(price.fast)
    if fast:
        table["fast"] = fast
    elif price.fast is not None:
        ignored = (*ignored, FAST_IGNORED)
    elif price.kept_fast:
        table["fast"] = dict(price.kept_fast)
    return SyncedEntry(price.model_id, price.source_id, table, ignored=ignored,
                       fields=_fields(price), added=price.added is not None)  # fmt: skip


def _fast_table(rates: Mapping[str, Decimal | Tiered] | None) -> dict[str, object]:
    """kei's ``fast`` table of the database's fast-mode rates; {} when there is none or
    kei cannot hold it (a tiered or fractional rate, or no input or output rate)."""
    if rates is None or "input_mtok" not in rates or "output_mtok" not in rates:
        return {}
    table: dict[str, object] = {}
    for key in (k for k in KEI_KEYS if k in rates):
        value = rates[key]
        micro = None if isinstance(value, Tiered) else _micro(value)
        if micro is None:
            return {}
        table[KEI_KEYS[key]] = micro
    return table


def _fields(price: SourcePrice) -> dict[str, object]:
    """The entry's keys besides ``id`` and ``pricing``, in the catalog's order."""
    fields: dict[str, object] = {}
    new = price.added
    if new is not None:
        fields.update(provider=new.provider, status="deprecated" if new.deprecated else "active",
                      display_name=new.display_name, context_tokens=new.context_tokens)  # fmt: skip
    if price.aliases:
        fields["aliases"] = list(price.aliases)
    if price.dated_snapshots:
        fields["dated_snapshots"] = True
    return fields


def render(entries: Iterable[SyncedEntry], version: str) -> str:
    """``prices.toml``: one ``[[models]]`` per priced entry: ``id``, its ``fields``
    and ``pricing`` (the catalog overlays it: the rest of a known entry stays as it
    was; a model the sync adds is written whole)."""
    lines = [
        "# Prices written by `kei models sync` from " + version + " (" + SOURCE_URL + ").",
        "# Generated: run `kei models sync` again instead of editing; to override a",
        "# price, use $KEI_HOME/models.toml, which is read after this file.",
    ]
    for e in entries:
        if e.pricing is None:
            continue
        lines += ["", "[[models]]", f"id = {_text(e.model_id)}"]
        lines += [f"{k} = {_value(v)}" for k, v in e.fields.items()]
        lines += ["", "[models.pricing]"]
        lines += [f"{k} = {_value(v)}" for k, v in e.pricing.items() if k not in _SUBTABLES]
        for name in _SUBTABLES:
            sub = e.pricing.get(name)
            if isinstance(sub, dict):
                lines += ["", f"[models.pricing.{name}]"]
                lines += [f"{k} = {_value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"


def _starts(value: Tiered) -> set[int]:
    return {start for start, _ in value.tiers}


def _micro(usd: Decimal) -> int | None:
    micro = usd * _MICRO_CENTS_PER_USD
    return int(micro) if micro == micro.to_integral_value() and micro >= 0 else None


def _skip(price: SourcePrice, why: str, ignored: tuple[str, ...]) -> SyncedEntry:
    return SyncedEntry(price.model_id, price.source_id, None, why, ignored)


def _text(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value) if isinstance(value, int) else _text(str(value))
