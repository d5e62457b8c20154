"""``import_kei_hibernate``: the kei-ledger database inside an upstream kei-hibernate
bundle, checked as a whole first (``hibernate_bundle.py``), then imported with
``import_kei_ledger``, so a re-run is idempotent and incremental like that import.

Only the ledger database becomes events; the kit's other files (capabilities,
roles, skills, hooks, the kei-memory database) are checked against the manifest but
not imported, and the report says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Final

from kei.adapters.files.tarsafe import ArchiveLimits
from kei.app.importers.hibernate_bundle import read_bundle
from kei.app.importers.kei_ledger import import_kei_ledger
from kei.app.importers.report import ImportReport
from kei.app.ledger.ledger import Ledger
from kei.errors import BundleError

LEDGER_ENTRY: Final = ".claude/agents/ledger.sqlite"


def import_kei_hibernate(
    ledger: Ledger,
    url: str,
    path: str | Path,
    *,
    dry_run: bool = False,
    limits: ArchiveLimits = ArchiveLimits(),
) -> ImportReport:
    """Check the bundle at ``path``; import the kei-ledger database it holds."""
    with tempfile.TemporaryDirectory(prefix="kei-hibernate-") as tmp:
        bundle = read_bundle(Path(path), LEDGER_ENTRY, Path(tmp), limits)
        if bundle.kept is None:
            raise BundleError(
                f"{path} holds no {LEDGER_ENTRY}; nothing to import",
                kind="missing",
                hint="kei imports the kei-ledger database of a kei-hibernate bundle",
            )
        report = import_kei_ledger(ledger, url, bundle.kept, dry_run=dry_run)
    report.source = f"{path}!{LEDGER_ENTRY}"
    others = [f for f in bundle.files if f != LEDGER_ENTRY]
    report.notes.insert(
        0,
        f"bundle from {bundle.machine_id or 'an unknown host'} at unix time "
        f"{bundle.timestamp}: all {len(bundle.files)} files match the manifest; "
        f"{len(others)} other files (kit files, the memory database) are not events "
        "and were not imported",
    )
    return report
