"""``kei import project PATH|URL``: the command body (``import_cmd`` registers it).

Without ``--report``, ``--plan`` or ``--run-phase`` it imports: walks the folder (or
a clone of the URL, removed afterwards), appends what changed and prints a summary
(``--json``: one object). ``--report`` prints the gap report and ``--plan`` the port
plan from the read model, as markdown (upstream's format) or ``--format json``; they
read the ledger only, so PATH may be gone by then (it names the project). ``--run-phase
ID`` forks the phase's agent. The extra ``kei[project]`` is loaded only here.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import typer
from msgspec import Struct

from kei.adapters.cli.context import answering, open_ledger, seal_key
from kei.adapters.cli.options import DryRun, JsonObject, chosen_format, option_group
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.app.importers.project.importing import ProjectImport

FORMATS = {"markdown": "markdown", "md": "markdown", "json": "json"}
SourceArg = Annotated[
    str, typer.Argument(metavar="PATH|URL", help="The repository: a folder or a git URL.")
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", metavar="NAME", help="The project's name (default: the folder's)."),
]
ReportOpt = Annotated[bool, typer.Option("--report", help="Print the gap report; import nothing.")]
PlanOpt = Annotated[bool, typer.Option("--plan", help="Print the port plan; import nothing.")]
FormatOpt = Annotated[
    Literal["markdown", "md", "json"] | None,
    typer.Option("--format", help="For --report and --plan: markdown (md; the default) or json."),
]
ThresholdOpt = Annotated[
    float,
    typer.Option("--threshold", metavar="X", min=0.3, max=1.0,
                 help="Confidence a module needs to join a plan phase (0.3 to 1; import only)."),
]  # fmt: skip
MatcherOpt = Annotated[
    Literal["tags", "regex"],
    typer.Option("--matcher", help="tags: tree-sitter, 5 languages; regex: upstream's, Rust."),
]
PhaseOpt = Annotated[
    str | None,
    typer.Option("--run-phase", metavar="PHASE", help="Fork the agent of a plan phase (P0.1)."),
]


class Choices(Struct, frozen=True, kw_only=True):
    """How to import (``--name``, ``--matcher``, ``--threshold``, ``--dry-run``) and
    what to do instead (``--report``, ``--plan`` with ``--format``, ``--run-phase``)."""

    name: str | None = None
    matcher: str = "tags"
    threshold: float = 0.5
    dry_run: bool = False
    report: bool = False
    plan: bool = False
    fmt: str | None = None
    run_phase: str | None = None


choices: Final = option_group(
    "chosen",
    {"name": NameOpt, "matcher": MatcherOpt, "threshold": ThresholdOpt, "dry_run": DryRun,
     "report": ReportOpt, "plan": PlanOpt, "fmt": FormatOpt, "run_phase": PhaseOpt},
    Choices,
    {"matcher": "tags", "threshold": 0.5, "dry_run": False, "report": False, "plan": False},
)  # fmt: skip


@choices
def project(
    ctx: typer.Context, source: SourceArg, *, chosen: Choices, as_json: JsonObject = False
) -> None:
    """Import a repository's modules, trait matches, doc skills and port plan; a re-run
    appends only what changed. --report / --plan print from the ledger."""
    from kei.app.importers.project.importing import project_slug
    from kei.app.importers.project.source import is_url, name_of_url
    from kei.errors import InputError

    c = chosen
    with answering(ctx) as g:
        settings = g.settings()
        if sum([c.report, c.plan, c.run_phase is not None]) > 1:
            raise InputError("--report, --plan and --run-phase go one at a time")
        if c.fmt is not None and not (c.report or c.plan):
            raise InputError("--format goes with --report or --plan", hint="use --json")
        if c.dry_run and (c.report or c.plan or c.run_phase is not None):
            raise InputError("--dry-run goes with an import, not --report, --plan or --run-phase")
        slug = project_slug(c.name or _default_name(source, is_url, name_of_url))
        if c.report or c.plan:
            chosen_fmt = chosen_format(c.fmt, as_json=as_json, formats=FORMATS, default="markdown")
            _print(_read(settings, slug, report=c.report, chosen=chosen_fmt))
            return
        with open_ledger(settings, with_key=not c.dry_run) as ledger:
            if c.run_phase is not None:
                _fork(ledger, slug, c.run_phase, as_json=as_json)
                return
            from kei.app.importers.project.importing import import_project

            run = import_project(ledger, source, name=c.name, matcher=c.matcher,
                                 threshold=c.threshold, dry_run=c.dry_run)  # fmt: skip
        _print(run.to_dict() if as_json else summary(run))


def _fork(ledger: Any, slug: str, phase: str, *, as_json: bool) -> None:
    from kei.app.importers.project.phases import run_phase

    forked = run_phase(ledger, slug, phase)
    if as_json:
        json_line({"phase_id": forked.phase_id, "agent_id": forked.agent_id,
                   "dna": forked.dna, "appended": forked.appended})  # fmt: skip
    else:
        sys.stdout.write(forked.message + (f" ({forked.dna})\n" if forked.dna else "\n"))


def _default_name(source: str, is_url: Any, name_of_url: Any) -> str:
    from pathlib import Path

    if is_url(source):
        return str(name_of_url(source))
    return Path(source).expanduser().resolve().name or "project"


def _read(settings: Any, slug: str, *, report: bool, chosen: str) -> Any:
    from kei.app.importers.project import reads

    read = reads.gap_report if report else reads.plan
    with open_ledger(settings) as ledger:
        return read(ledger, slug, as_json=chosen == "json", seal_key=seal_key(settings))


def _print(found: Any) -> None:
    if isinstance(found, str):
        sys.stdout.write(found)
    else:
        json_line(found)


def summary(run: ProjectImport) -> str:
    """The human summary of one run."""
    verb = "to append" if run.dry_run else "appended"
    lines = [
        f"project {run.project} from {run.source}"
        + (f" at {run.commit[:12]}" if run.commit else "")
        + (" (dry run: nothing appended)" if run.dry_run else ""),
        f"modules: {run.modules.found} ({run.unreadable} unreadable manifests), "
        f"{run.modules.changed} new or changed, {run.modules.removed} removed",
        f"skills: {run.skills.found}, {run.skills.changed} new or changed, "
        f"{run.skills.removed} removed"
        f" (memory namespace skills/{run.slug})",
        f"plan phases changed: {run.phases_changed}",
        f"events {verb}: {run.events_appended}",
    ]
    lines += [f"skipped path {p}: {why}" for p, why in run.skipped_paths]
    lines += [f"skill {k} not written to memory: {why}" for k, why in run.blocked_skills]
    return "\n".join(lines) + "\n"
