"""Importers: carry other systems' histories into kei as signed events.

Each importer reads its source read-only, plans events with the domain rules, marks
every event with an ``Origin`` (source, upstream time, upstream row) and appends in
chunks; a re-run appends only what is missing. ``kei_ledger`` imports upstream
kei-ledger databases (schema v1–v9), each in its own namespace (``namespaces``);
``kei_hibernate`` checks an upstream kei-hibernate bundle whole (``hibernate_bundle``)
and imports the ledger inside. Nothing is dropped without the report naming its row.
"""

from __future__ import annotations

from kei.app.importers.kei_ledger import import_kei_ledger
from kei.app.importers.report import ImportReport, NotCarried

__all__ = ["ImportReport", "NotCarried", "import_kei_ledger"]
