"""``kei models sync``: read the ``genai-prices`` database, write ``$KEI_HOME/prices.toml``.

The database is Pydantic's ``genai-prices`` package (the ``prices`` extra:
``pip install 'kei[prices]'``). Its bundled snapshot is read; nothing is fetched from
the network: a newer price list is a newer package (``pip install -U genai-prices``),
and its version is recorded in every entry (``source_version``). The package and its
dependencies are imported by this command only, never by a command that prices a call:
those read the TOML this writes (``adapters/files/catalog.py``).

Which models: every token-priced model of the catalog whose provider the database
covers (:data:`PROVIDERS`), matched by id, then by alias, with the database's own
matching rules, priced as of now. The conversion is ``kei.domain.catalog.sync``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msgspec import Struct

from kei.adapters.files.catalog import PRICES_FILE
from kei.adapters.files.safe_output import Protected, write_bytes
from kei.domain.catalog.catalog import Catalog, Model
from kei.domain.catalog.sync import SourcePrice, SyncedEntry, Tiered, pricing_table, render
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


def sync_prices(catalog: Catalog, home: Path, *, dry_run: bool = False) -> SyncReport:
    """Price the catalog's models from the database; write ``prices.toml`` unless
    ``dry_run``."""
    db = _database()
    version = f"genai-prices {getattr(db, '__version__', 'unknown')}"
    providers = {p.id: p for p in db.data_snapshot.get_snapshot().providers}
    now = datetime.now(UTC)
    entries: list[SyncedEntry] = []
    unmatched: list[str] = []
    for model in catalog.models:
        provider = providers.get(PROVIDERS.get(model.provider, ""))
        found = _find(provider, model) if provider is not None else None
        if model.pricing.unit != "token" or found is None:
            unmatched.append(model.id)
            continue
        rates = _rates(found.get_prices(now))
        entries.append(pricing_table(SourcePrice(model.id, found.id, rates), version))
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


def _find(provider: Any, model: Model) -> Any:
    for name in _names(model):
        found = provider.find_model(name)
        if found is not None:
            return found
    return None


def _names(model: Model) -> Iterator[str]:
    yield model.id
    yield from model.aliases


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
