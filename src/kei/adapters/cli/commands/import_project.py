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
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from kei.adapters.cli.context import answering, open_ledger, seal_key
from kei.adapters.cli.options import DryRun, JsonObject, chosen_format
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


def project(
    ctx: typer.Context,
    source: SourceArg,
    name: NameOpt = None,
    report: ReportOpt = False,
    plan: PlanOpt = False,
    fmt: FormatOpt = None,
    threshold: ThresholdOpt = 0.5,
    matcher: MatcherOpt = "tags",
    run_phase: PhaseOpt = None,
    dry_run: DryRun = False,
    as_json: JsonObject = False,
) -> None:
    """Import a repository's modules, trait matches, doc skills and port plan; a re-run
    appends only what changed. --report / --plan print from the ledger."""
    from kei.app.importers.project.importing import import_project, project_slug
    from kei.app.importers.project.source import is_url, name_of_url
    from kei.errors import InputError

    with answering(ctx) as g:
        settings = g.settings()
        if sum([report, plan, run_phase is not None]) > 1:
            raise InputError("--report, --plan and --run-phase go one at a time")
        if fmt is not None and not (report or plan):
            raise InputError("--format goes with --report or --plan", hint="use --json")
        slug = project_slug(name or _default_name(source, is_url, name_of_url))
        if report or plan:
            chosen = chosen_format(fmt, as_json=as_json, formats=FORMATS, default="markdown")
            _print(_read(settings, slug, report=report, chosen=chosen))
            return
        with open_ledger(settings, with_key=not dry_run) as ledger:
            if run_phase is not None:
                from kei.app.importers.project.phases import run_phase as fork_phase

                forked = fork_phase(ledger, slug, run_phase)
                if as_json:
                    json_line({"phase_id": forked.phase_id, "agent_id": forked.agent_id,
                               "dna": forked.dna, "appended": forked.appended})  # fmt: skip
                else:
                    sys.stdout.write(
                        f"{forked.message}" + (f" ({forked.dna})\n" if forked.dna else "\n")
                    )
                return
            run = import_project(ledger, source, name=name, matcher=matcher,
                                 threshold=threshold, dry_run=dry_run)  # fmt: skip
        if as_json:
            json_line(run.to_dict())
        else:
            sys.stdout.write(summary(run))


def _default_name(source: str, is_url: Any, name_of_url: Any) -> str:
    from pathlib import Path

    if is_url(source):
        return str(name_of_url(source))
    return Path(source).expanduser().resolve().name or "project"


def _read(settings: Any, slug: str, *, report: bool, chosen: str) -> Any:
    from kei.app.importers.project.reads import ProjectReads

    with open_ledger(settings) as ledger, ProjectReads(ledger, seal_key=seal_key(settings)) as r:
        as_json = chosen == "json"
        return r.report(slug, as_json=as_json) if report else r.plan(slug, as_json=as_json)


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
        f"modules: {run.modules} ({run.unreadable} unreadable manifests), "
        f"{run.modules_changed} new or changed, {run.modules_removed} removed",
        f"skills: {run.skills}, {run.skills_changed} new or changed, {run.skills_removed} removed"
        f" (memory namespace skills/{run.slug})",
        f"plan phases changed: {run.phases_changed}",
        f"events {verb}: {run.events_appended}",
    ]
    lines += [f"skipped path {p}: {why}" for p, why in run.skipped_paths]
    lines += [f"skill {k} not written to memory: {why}" for k, why in run.blocked_skills]
    return "\n".join(lines) + "\n"
