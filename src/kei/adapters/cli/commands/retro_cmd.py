"""``kei retro ingest|show|patterns|similar|coaccess``: session retrospectives.

Thin: ``kei.app.retro`` ingests and reads, ``kei.domain.retro.sessions`` analyses.
Every analysis is a function of the distinct events in the log, so it gives the same
answer however often a transcript was ingested or the read model rebuilt. Data goes to
stdout (``--json``: one object per line), the ingest summary to stderr.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from msgspec.structs import asdict

from kei.adapters.cli.context import answering, command_group, service_scope, stderr
from kei.adapters.cli.options import JsonLines, JsonObject, number
from kei.adapters.cli.output import json_line
from kei.app.ledger.tail import printable as safe

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.retro import RetroService

retro_app, register = command_group("retro", "Session retrospectives from ingested transcripts.")

SessionArg = Annotated[str, typer.Argument(metavar="SESSION", help="The session id.")]


def _service(settings: Settings, *, write: bool = False) -> AbstractContextManager[RetroService]:
    from kei.adapters.files.leaks import load_matrix
    from kei.app.retro import RetroService

    matrix = load_matrix(None, os.environ, settings.home)
    return service_scope(settings, partial(RetroService, matrix=matrix), write=write)


@retro_app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    transcript: Annotated[
        Path, typer.Argument(metavar="FILE", help="A Claude Code or legacy .jsonl file.")
    ],
    session: Annotated[str, typer.Option("--session", metavar="ID", help="The session id.")],
    as_json: JsonObject = False,
) -> None:
    """Append the transcript's events the log does not hold yet (same file twice: none)."""
    with answering(ctx) as g, _service(g.settings(), write=True) as service:
        report = service.ingest(transcript, session)
    skipped = [{"line": s.line_no, "reason": s.reason} for s in report.skipped]
    if as_json:
        json_line({"session": session, "lines": report.lines, "appended": report.appended,
                   "known": report.known, "rejected": report.rejected, "skipped": skipped})  # fmt: skip
        return
    stderr().print(
        f"kei: {report.lines} line(s): {report.appended} event(s) appended "
        f"({report.rejected} refused by the guard or the leak matrix), {report.known} already "
        f"in the log, {len(skipped)} line(s) skipped",
        markup=False,
    )
    for s in skipped[:10]:
        stderr().print(f"kei: line {s['line']}: {safe(str(s['reason']))}", markup=False)


@retro_app.command("show")
def show_cmd(ctx: typer.Context, session: SessionArg, as_json: JsonObject = False) -> None:
    """A session's retrospective: duration from its own times, tools, files, errors."""
    from kei.domain.retro.sessions import retrospective

    with answering(ctx) as g, _service(g.settings()) as service:
        retro = retrospective(service.events(session), session)
    if retro is None:
        stderr().print(f"kei: no events for session {safe(session)}", markup=False)
        raise typer.Exit(1)
    data = asdict(retro) | {"duration_us": retro.duration_us}
    if as_json:
        json_line(data)
        return
    seconds = "?" if retro.duration_us is None else f"{retro.duration_us / 1e6:.0f}"
    typer.echo(f"session {safe(session)}: {retro.events} events, {retro.tool_calls} tool calls, "
               f"{retro.errors} errors, {seconds} s")  # fmt: skip
    for title, ranked in (("tools", retro.top_tools), ("files", retro.top_files),
                          ("classes", retro.classes)):  # fmt: skip
        if ranked:
            typer.echo(f"{title}: " + ", ".join(f"{safe(str(name))} ({n})" for name, n in ranked))


@retro_app.command("patterns")
def patterns_cmd(
    ctx: typer.Context,
    min_count: Annotated[
        int,
        number("--min-count", help="At least N times."),
    ] = 2,
    as_json: JsonLines = False,
) -> None:
    """Event classes that recur within a session, and across sessions."""
    from kei.domain.retro.sessions import all_patterns, patterns_across_sessions

    with answering(ctx) as g, _service(g.settings()) as service:
        events = service.events()
    found = [*all_patterns(events), *patterns_across_sessions(events)]
    for p in (p for p in found if p.count >= min_count):
        if as_json:
            json_line(asdict(p))
        else:
            where = safe(p.session) if p.session is not None else "(across sessions)"
            typer.echo(f"{safe(p.event_class)}\t{where}\t{p.count}")


@retro_app.command("similar")
def similar_cmd(
    ctx: typer.Context,
    session: SessionArg,
    k: Annotated[int, number("-k", help="How many sessions.")] = 5,
    as_json: JsonLines = False,
) -> None:
    """The sessions most like SESSION by TF-IDF over their real content."""
    from kei.domain.retro.sessions import documents, similar_sessions

    with answering(ctx) as g, _service(g.settings()) as service:
        found = similar_sessions(session, documents(service.events()), k)
    for s in found:
        if as_json:
            json_line(asdict(s))
        else:
            typer.echo(f"{safe(s.session)}\t{s.score:.3f}")


@retro_app.command("coaccess")
def coaccess_cmd(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """Files touched within 300 s of each other, most often first."""
    from kei.domain.retro.sessions import coaccess_pairs

    with answering(ctx) as g, _service(g.settings()) as service:
        pairs = coaccess_pairs(service.events())
    for p in pairs:
        row: dict[str, Any] = asdict(p)
        if as_json:
            json_line(row)
        else:
            typer.echo(f"{safe(p.file_a)}\t{safe(p.file_b)}\t{p.count}")
