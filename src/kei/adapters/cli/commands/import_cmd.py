"""``kei import kei-ledger PATH``, ``kei import kei-hibernate BUNDLE``, ``kei import
claude-code [PATH...]``, ``kei import kei-migrate --target URL`` (whose work is in
``migrate_cmd``) and ``kei import project PATH|URL`` (``import_project``): carry another system's history into kei as events.

Thin: the import lives in ``kei.app.importers``. The summary goes to stdout
(it is the command's answer): counts, notes, then what was not carried over, one
tab-separated line per item (upstream row, what, why). On a terminal only the first
``SHOWN`` items are listed with the count; piped, all of them; ``--json`` prints one
object with everything. An import that ran exits 0 even when some items could not
carry over; a refusal (missing or foreign file, newer schema) is one line, exit 2,
and appends nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Protocol, get_type_hints

import typer

from kei.adapters.cli.commands import import_project
from kei.adapters.cli.context import answering, command_group, is_tty, open_ledger
from kei.adapters.cli.options import DryRun, JsonObject, TargetOpt
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.importers import ImportReport
    from kei.app.importers.claude_code import ClaudeImportReport
    from kei.app.ledger.ledger import Ledger


class Importer(Protocol):
    def __call__(
        self, ledger: Ledger, url: str, path: Path, *, dry_run: bool = ...,
        namespace: str | None = ...,
    ) -> ImportReport: ...  # fmt: skip


import_app, register = command_group("import", "Import other systems' histories into kei.")
SHOWN: Final = 20

LedgerArg = Annotated[
    Path, typer.Argument(metavar="PATH", help="The upstream kei-ledger SQLite file (v1–v9).")
]
BundleArg = Annotated[
    Path, typer.Argument(metavar="BUNDLE", help="The upstream kei-hibernate .tar.zst bundle.")
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        metavar="NAME",
        help="The namespace of a database imported for the first time (default: its "
        "project folder, else its file name); ids kei already holds become NAME:ID.",
        show_default=False,
    ),
]
TranscriptsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="[PATH]...",
        help="Transcript files or folders (default: ~/.claude/projects and "
        "$CLAUDE_CONFIG_DIR/projects).",
        show_default=False,
    ),
]


def _upstream_command(name: str, argument: object, load: Callable[[], Importer], doc: str) -> None:
    """Register ``kei import NAME``: one upstream source (``argument``: its ``PATH``
    argument), the same options, the same report; ``load`` imports the importer only
    when the command runs."""

    def command(
        ctx: typer.Context, path: Path, namespace: NamespaceOpt = None,
        dry_run: DryRun = False, as_json: JsonObject = False,
    ) -> None:  # fmt: skip
        _run(ctx, load(), path, namespace, dry_run=dry_run, as_json=as_json)

    hints = get_type_hints(command, include_extras=True)
    command.__annotations__ = {**hints, "path": argument}
    command.__doc__ = doc
    import_app.command(name)(command)


def _kei_ledger() -> Importer:
    from kei.app.importers import import_kei_ledger

    return import_kei_ledger


def _kei_hibernate() -> Importer:
    from kei.app.importers.kei_hibernate import import_kei_hibernate

    return import_kei_hibernate


_upstream_command(
    "kei-ledger", LedgerArg, _kei_ledger,
    "Import an upstream kei-ledger database; a re-run appends only what is missing.",
)  # fmt: skip
_upstream_command(
    "kei-hibernate", BundleArg, _kei_hibernate,
    "Check an upstream kei-hibernate bundle whole, then import its kei-ledger database.",
)  # fmt: skip


@import_app.command("claude-code")
def claude_code(
    ctx: typer.Context,
    paths: TranscriptsArg = None,
    dry_run: DryRun = False,
    as_json: JsonObject = False,
) -> None:
    """Record the cost of every billed message in Claude Code's transcripts (sub-agents
    included); a re-run appends nothing new."""
    import os

    from kei.adapters.files.catalog import load_catalog
    from kei.adapters.workers.processes import spare_core
    from kei.app.importers.claude_code import import_claude_code, sources

    with answering(ctx) as g:
        settings = g.settings()
        roots = sources(paths or [], Path.home(), os.environ.get("CLAUDE_CONFIG_DIR"))
        catalog = load_catalog(settings.home)
        # a long bulk write: helper processes (reading, signing half of each batch) pay
        # off where a core is free
        helpers = spare_core()
        with open_ledger(settings, with_key=not dry_run, parallel_signing=helpers) as ledger:
            report = import_claude_code(ledger, roots, catalog, dry_run=dry_run, helpers=helpers)
            _answer(report, as_json=as_json)
            _check_budgets(settings, ledger, report)


@import_app.command("kei-migrate")
def kei_migrate(ctx: typer.Context, target: TargetOpt = None, dry_run: DryRun = False,
                as_json: JsonObject = False) -> None:  # fmt: skip
    """Carry an upstream kei-migrate _kei_migrations table into the log (one
    migrate.applied per row); a re-run appends only what is missing."""
    from kei.adapters.cli.commands.migrate_cmd import import_tracker

    import_tracker(ctx, target, dry_run=dry_run, as_json=as_json)


import_app.command("project")(import_project.project)


def claude_summary(report: ClaudeImportReport, *, limit: int | None) -> str:
    """The human summary of a Claude Code import; ``limit`` caps the malformed lines."""
    from kei.domain.agents.money import format_usd

    verb = "to append" if report.dry_run else "appended"
    lines = [
        _title(f"Claude Code transcripts from {', '.join(report.sources)}", report.dry_run),
        f"files: {report.files} read, {report.lines} lines, {report.sessions} sessions",
        f"billed messages: {report.billed} new, {report.repeated} repeated lines, "
        f"{report.already} already in kei",
        f"cost events {verb}: {report.events_appended} ({format_usd(report.micro_cents)}); "
        f"agents forked: {report.agents_forked}; sub-agents closed: {report.agents_closed}",
    ]
    if report.unpriced:
        counts = ", ".join(f"{m} {n}" for m, n in report.unpriced.items())
        lines.append(f"recorded unpriced, no catalog price: {counts} (see kei models)")
    if report.speed_unpriced:
        counts = ", ".join(f"{m} {n}" for m, n in report.speed_unpriced.items())
        lines.append(f"fast mode at standard rates, no fast price: {counts} (see kei models)")
    lines.append(f"malformed lines: {report.malformed}")
    shown = report.bad_lines if limit is None else report.bad_lines[:limit]
    lines += [f"  {b.file}:{b.line}\t{b.why}" for b in shown]
    if len(shown) < report.malformed:
        lines.append(f"  … and {report.malformed - len(shown)} more (--json lists the first)")
    lines += [f"skipped {path}: {why}" for path, why in report.skipped_files]
    lines += [f"not recorded, {what}: {why}" for what, why in report.refused]
    return "\n".join(lines) + "\n"


def _run(
    ctx: typer.Context, importer: Importer, source: Path, namespace: str | None, *,
    dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Open the ledger (no key needed for a dry run), import, print the report."""
    with answering(ctx) as g:
        settings = g.settings()
        with open_ledger(settings, with_key=not dry_run) as ledger:
            report = importer(ledger, settings.db_url, source, dry_run=dry_run, namespace=namespace)
            _answer(report, as_json=as_json)
            _check_budgets(settings, ledger, report)


def _check_budgets(
    settings: Settings, ledger: Ledger, report: ImportReport | ClaudeImportReport
) -> None:
    """Once per run, after the costs are in: the budgets' thresholds (``budget_lines``)."""
    from kei.app.importers import ImportReport

    also = report.also if isinstance(report, ImportReport) else []
    if report.dry_run or not (report.events_appended or any(r.events_appended for r in also)):
        return
    from kei.adapters.cli.budget_lines import after_costs, say

    say(after_costs(settings, ledger))


def _answer(report: ImportReport | ClaudeImportReport, *, as_json: bool) -> None:
    """The report: one JSON object, or its summary (all of it when piped)."""
    from kei.app.importers import ImportReport

    if as_json:
        json_line(report.to_dict())
        return
    limit = SHOWN if is_tty() else None
    if isinstance(report, ImportReport):
        sys.stdout.write(summary(report, limit=limit))
    else:
        sys.stdout.write(claude_summary(report, limit=limit))


def _title(text: str, dry_run: bool) -> str:
    return text + (" (dry run: nothing appended)" if dry_run else "")


def summary(report: ImportReport, *, limit: int | None) -> str:
    """The human summary; ``limit`` caps the not-carried-over lines (None: all)."""
    verb = "to append" if report.dry_run else "appended"
    lines = [
        _title(
            f"kei-ledger schema v{report.schema_version} from {report.source}, namespace "
            f"{report.namespace or '(none)'}",
            report.dry_run,
        ),
        f"agents: {report.agents_imported} imported, {report.agents_updated} updated, "
        f"{report.agents_unchanged} unchanged, {report.agents_skipped} skipped",
        f"events {verb}: {report.events_appended}",
        f"cost events: {report.cost_events}",
        f"skill invocations: {report.skill_invocations} imported, "
        f"{report.skills_already} already in kei",
    ]
    lines += [f"note: {n}" for n in report.notes]
    items = report.not_carried
    if items:
        lines.append(f"not carried over: {len(items)}")
        shown = items if limit is None else items[:limit]
        lines += [f"  {item.line()}" for item in shown]
        if len(shown) < len(items):
            lines.append(f"  … and {len(items) - len(shown)} more (--json lists all)")
    else:
        lines.append("not carried over: none")
    for other in report.also:  # a bundle's other kei-ledger databases, each its own import
        lines += ["", summary(other, limit=limit).rstrip("\n")]
    return "\n".join(lines) + "\n"
