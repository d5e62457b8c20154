"""Importers: carry other systems' histories into kei as signed events.

Each importer reads its source read-only, plans events with the domain rules, marks
every event with an ``Origin`` (source, upstream time, upstream row) and appends in
chunks; a re-run appends only what is missing. ``kei_ledger`` imports upstream
kei-ledger databases (schema v1–v9), each in its own namespace (``namespaces``);
``kei_hibernate`` checks an upstream kei-hibernate bundle whole (``hibernate_bundle``)
and imports the ledger inside. Nothing is dropped without the report naming its row.

Its names load on first use: ``kei import claude-code`` imports ``claude_code`` through
this package and has no use for ``kei_ledger``'s read models (SQLAlchemy, about 0.15 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kei.app.importers.kei_ledger import import_kei_ledger
    from kei.app.importers.report import ImportReport, NotCarried

__all__ = ["ImportReport", "NotCarried", "import_kei_ledger"]
_HOMES = {"import_kei_ledger": "kei_ledger", "ImportReport": "report", "NotCarried": "report"}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
