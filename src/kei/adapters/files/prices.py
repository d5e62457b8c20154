"""``kei models sync``: read the ``genai-prices`` database, write ``$KEI_HOME/prices.toml``.

The database is Pydantic's ``genai-prices`` package (the ``prices`` extra:
``pip install 'kei[prices]'``). Its bundled snapshot is read; nothing is fetched from
the network: a newer price list is a newer package (``pip install -U genai-prices``),
and its version is recorded in every entry (``source_version``). The package and its
dependencies are imported by this command only, never by a command that prices a call:
those read the TOML this writes (``adapters/files/catalog.py``).

Which models: every token-priced model of the catalog whose provider the database
covers (:data:`PROVIDERS`), matched by id, then by alias, with the database's own
matching rules, priced as of now (and in fast mode, where the database has a
``speed: fast`` price variant); then every other token-priced model of those
providers in the database, added as a new entry. The conversion is ``kei.domain.catalog.sync``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msgspec import Struct

from kei.adapters.files.catalog import PRICES_FILE
from kei.adapters.files.safe_output import Protected, write_bytes
from kei.domain.catalog.catalog import Catalog, Model
from kei.domain.catalog.entries import pricing_dict
from kei.domain.catalog.sync import (
    SourceModel,
    SourcePrice,
    SyncedEntry,
    Tiered,
    pricing_table,
    render,
)
from kei.errors import InputError

__all__ = ["PRICES_FILE", "PROVIDERS", "SyncReport", "prices_path", "sync_prices"]

# kei's provider -> the database's provider id
PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "kimi": "moonshotai",
             "mistral": "mistral", "deepseek": "deepseek", "google": "google"}  # fmt: skip


class SyncReport(Struct, frozen=True):
    """What a sync found: the entries (priced or skipped), the models it could not
    match, the database's version and the file written (None for a dry run)."""

    version: str
    entries: tuple[SyncedEntry, ...]
    unmatched: tuple[str, ...]
    path: Path | None


def prices_path(home: Path) -> Path:
    return home / PRICES_FILE


def sync_prices(
    catalog: Catalog, home: Path, *, reserved: Iterable[str] = (), dry_run: bool = False
) -> SyncReport:
    """Price ``catalog`` (the shipped one) from the database; write ``prices.toml``
    unless ``dry_run``. ``reserved`` are the names the user's catalog uses: the sync
    never gives them to another model."""
    db = _database()
    version = f"genai-prices {getattr(db, '__version__', 'unknown')}"
    providers = {p.id: p for p in db.data_snapshot.get_snapshot().providers}
    now = datetime.now(UTC)
    entries: list[SyncedEntry] = []
    unmatched: list[str] = []
    matched: set[str] = set()
    taken = {name for m in catalog.models for name in (m.id, *m.aliases)} | set(reserved)
    for model in catalog.models:
        provider = providers.get(PROVIDERS.get(model.provider, ""))
        found = _find(provider, model) if provider is not None else None
        if model.pricing.unit != "token" or found is None:
            unmatched.append(model.id)
            continue
        matched.add(found.id)
        more = _free_names(found, taken)
        aliases = (*model.aliases, *more) if more else ()
        rates = _rates(found.get_prices(now))
        kept = pricing_dict(model.pricing).get("fast")
        price = SourcePrice(model.id, found.id, rates, _dated(provider, found), aliases,
                            fast=_fast(found, now),
                            kept_fast=kept if isinstance(kept, dict) else None)  # fmt: skip
        entries.append(pricing_table(price, version))
    entries += _additions(providers, matched, taken, version, now)
    path = None
    if not dry_run:
        path = prices_path(home)
        home.mkdir(parents=True, exist_ok=True)
        write_bytes(path, Protected(), render(entries, version).encode(), force=True)
    return SyncReport(version, tuple(entries), tuple(unmatched), path)


def _database() -> Any:
    try:
        db = importlib.import_module("genai_prices")
        importlib.import_module("genai_prices.data_snapshot")
    except ImportError as exc:
        raise InputError(
            "kei models sync needs the genai-prices package",
            hint="install it with: pip install 'kei[prices]'",
        ) from exc
    return db


def _additions(
    providers: dict[str, Any], matched: set[str], taken: set[str], version: str, now: datetime
) -> list[SyncedEntry]:
    """The covered providers' token-priced models the catalog lacks, priced; a model
    whose id kei already uses (for another model) is left out."""
    added: list[SyncedEntry] = []
    for kei_provider, source_provider in PROVIDERS.items():
        provider = providers.get(source_provider)
        for found in getattr(provider, "models", ()):
            if found.id in matched or found.id in taken:
                continue
            taken.add(found.id)
            aliases = _free_names(found, taken)
            new = SourceModel(kei_provider, found.name or found.id, found.context_window or 0,
                              bool(found.deprecated))  # fmt: skip
            rates = _rates(found.get_prices(now))
            dated = _dated(provider, found)
            price = SourcePrice(found.id, found.id, rates, dated, aliases, added=new,
                                fast=_fast(found, now))  # fmt: skip
            entry = pricing_table(price, version)
            if entry.pricing is not None:  # a model kei cannot price is not added
                added.append(entry)
    return added


def _free_names(found: Any, taken: set[str]) -> tuple[str, ...]:
    """The database's exact names for ``found`` that name no model yet, now taken:
    an alias never names two models."""
    names = tuple(dict.fromkeys(n for n in _exact_names(found.match) if n not in taken))
    taken.update(names)
    return names


def _exact_names(clause: Any) -> Iterator[str]:
    """The names a database match rule accepts exactly (its ``equals`` clauses)."""
    equals = getattr(clause, "equals", None)
    if isinstance(equals, str):
        yield equals
    for inner in getattr(clause, "or_", None) or ():
        yield from _exact_names(inner)


def _dated(provider: Any, found: Any) -> bool:
    """Whether the database prices a dated snapshot id of ``found`` as ``found``."""
    snapshot = provider.find_model(f"{found.id}-20990101")
    return snapshot is not None and snapshot.id == found.id


def _find(provider: Any, model: Model) -> Any:
    for name in _names(model):
        found = provider.find_model(name)
        if found is not None:
            return found
    return None


def _names(model: Model) -> Iterator[str]:
    yield model.id
    yield from model.aliases


def _fast(found: Any, now: datetime) -> dict[str, Any] | None:
    """The model's rates in fast mode (its ``speed: fast`` price variant laid over the
    standard rates, by the database's own rule), or None when it has no such variant."""
    for variant in getattr(found, "price_variants", None) or ():
        active = variant.constraint is None or variant.constraint.active(now)
        if variant.when == {"speed": "fast"} and active:
            return _rates(found.get_prices(now, {"speed": "fast"}))
    return None


def _rates(prices: Any) -> dict[str, Any]:
    """The database's price keys that are set, a tiered one as :class:`Tiered`."""
    rates: dict[str, Any] = {}
    for key, value in vars(prices).items():
        if key.startswith("_") or value is None:
            continue
        tiers = getattr(value, "tiers", None)
        if tiers is not None:
            value = Tiered(value.base, tuple((t.start, t.price) for t in tiers))
        rates[key] = value
    return rates
