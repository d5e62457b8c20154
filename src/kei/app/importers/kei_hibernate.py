"""``import_kei_hibernate``: the kei-ledger database inside an upstream kei-hibernate
bundle, checked as a whole first (``hibernate_bundle.py``), then imported with
``import_kei_ledger``, so a re-run is idempotent and incremental like that import.

Only the ledger databases become events; the kit's other files (capabilities,
roles, skills, hooks, the kei-memory database) are checked against the manifest but
not imported, and the report says so. The ledger's namespace defaults to the
bundle's file name without ``.tar.zst``, and errors name the bundle entry.

Any other kei-ledger database in the bundle (an SQLite entry with an ``agents``
table) is imported too, after the main one, as its own source database: its own
namespace (``<bundle>.<its project folder or stem>`` unless kei knows it already)
and its own report, in ``report.also``. One that kei cannot import (a newer schema)
is named with the reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Final, Unpack

from kei.adapters.files.tarsafe import ArchiveLimits
from kei.app.importers.hibernate_bundle import read_bundle
from kei.app.importers.kei_ledger import LedgerOptions, import_kei_ledger
from kei.app.importers.namespaces import default_name
from kei.app.importers.report import ImportReport
from kei.app.importers.upstream import has_agents
from kei.app.ledger.ledger import Ledger
from kei.errors import BundleError, InputError

LEDGER_ENTRY: Final = ".claude/agents/ledger.sqlite"


def import_kei_hibernate(
    ledger: Ledger, url: str, path: str | Path, *, limits: ArchiveLimits = ArchiveLimits(),
    **options: Unpack[LedgerOptions],
) -> ImportReport:  # fmt: skip
    """Check the bundle at ``path``; import the kei-ledger database it holds, with the
    ``options`` of ``import_kei_ledger`` (``dry_run``, ``namespace``)."""
    entry = f"{path}!{LEDGER_ENTRY}"
    bundle_name = Path(path).name.removesuffix(".zst").removesuffix(".tar")
    with tempfile.TemporaryDirectory(prefix="kei-hibernate-") as tmp:
        bundle = read_bundle(Path(path), LEDGER_ENTRY, Path(tmp), limits)
        if bundle.kept is None:
            raise BundleError(
                f"{path} holds no {LEDGER_ENTRY}; nothing to import",
                kind="missing",
                hint="kei imports the kei-ledger database of a kei-hibernate bundle",
            )
        default = default_name(Path(bundle_name))
        report = import_kei_ledger(
            ledger, url, bundle.kept, label=entry, default_namespace=default, **options
        )
        imported = {LEDGER_ENTRY}
        for name, copy in sorted(bundle.databases.items()):
            if not has_agents(copy):
                continue
            sub = f"{options.get('namespace') or default}.{default_name(Path(name))}"[:64]
            try:
                report.also.append(
                    import_kei_ledger(
                        ledger, url, copy, label=f"{path}!{name}", default_namespace=sub,
                        dry_run=options.get("dry_run", False),
                    )
                )  # fmt: skip
                imported.add(name)
            except InputError as exc:
                report.skip(f"{path}!{name}", "kei-ledger database", f"not imported: {exc}")
    others = [f for f in bundle.files if f not in imported]
    report.notes.insert(
        0,
        f"bundle from {bundle.machine_id or 'an unknown host'} at unix time "
        f"{bundle.timestamp}: all {len(bundle.files)} files match the manifest; "
        f"{len(others)} other files (kit files, the memory database) are not events "
        "and were not imported",
    )
    return report
