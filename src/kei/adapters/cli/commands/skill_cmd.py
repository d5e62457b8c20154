"""``kei skill record|report|last-used``: skill invocations and upstream's Phase-D metrics.

Thin: ``record`` checks its input (``kei.domain.agents.skills``) before the ledger is even
opened; ``kei.app.skills.SkillService`` appends and reads (``report`` and ``last-used``
catch the ``skills`` projection up, verifying the chain it reads). This module parses,
calls and renders: data on stdout, confirmations on stderr.
The report is upstream's markdown table by default; on a terminal, without
``--format``, it is a rich table instead (``render.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kei.adapters.cli.context import answering, command_group, is_tty, open_ledger, seal_key, stderr
from kei.adapters.cli.limits import INT64_MAX, INT64_MIN
from kei.adapters.cli.options import JsonObject, Since, SkillFormat, chosen_format, time_us
from kei.adapters.cli.output import json_line
from kei.app.json_form import json_form, rfc3339
from kei.app.ledger.tail import printable as safe
from kei.domain.agents import skills as sk
from kei.domain.events import SkillInvoked

if TYPE_CHECKING:
    from kei.adapters.cli.config import Settings
    from kei.app.skills import SkillService

skill_app, register = command_group("skill", "Skill invocations and their success metrics.")

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The skill's name.")]
FORMATS = {"markdown": "markdown", "md": "markdown", "json": "json"}
EMPTY = "*(no skill_invocations in window)*"
HEADER = "| skill | total | success% | p50_ms | p95_ms | last_ts | recommendation |"
RULE = "|-------|-------|----------|--------|--------|---------|----------------|"  # upstream's

DurationMsOpt = Annotated[
    int | None,
    typer.Option(
        "--duration-ms",
        metavar="MS",
        min=INT64_MIN,
        max=INT64_MAX,
        help="How long it ran, in ms (>= 0).",
    ),
]
TrajectoryOpt = Annotated[
    str | None, typer.Option("--trajectory", metavar="ID", help="The trajectory it was part of.")
]


@skill_app.command("record")
def record(
    ctx: typer.Context,
    name: NameArg,
    ok: Annotated[bool, typer.Option("--success/--failure", help="Whether the skill did its job.")],
    duration_ms: DurationMsOpt = None,
    agent: Annotated[
        str | None, typer.Option("--agent", metavar="ID", help="The agent that used it.")
    ] = None,
    trajectory: TrajectoryOpt = None,
    as_json: JsonObject = False,
) -> None:
    """Append one skill.invoked event to stream skill/NAME."""
    from kei.app.skills import SkillService

    with answering(ctx) as g:
        sk.validate_invocation(name, duration_ms)
        payload = SkillInvoked(
            skill_name=name,
            success=ok,
            duration_ms=duration_ms,
            agent_id=agent,
            trajectory_id=trajectory,
        )
        with open_ledger(g.settings(), with_key=True) as ledger:
            event = SkillService(ledger).record(payload)
        if as_json:
            json_line({"ok": True, "skill": name, "recorded_us": event.timestamp_us,
                       "position": event.position})  # fmt: skip
        outcome = "success" if ok else "failure"
        stderr().print(
            f"kei: recorded {outcome} of skill {name!r} at position {event.position}",
            markup=False,
        )


@skill_app.command("report")
def report(
    ctx: typer.Context,
    since: Since = None,
    fmt: Annotated[
        SkillFormat | None, typer.Option("--format", help="markdown (md; the default) or json.")
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Per-skill totals, success rate, p50/p95 duration and a recommendation, over the
    last 30 days unless --since says otherwise (--json: one JSON array)."""
    from kei.adapters.cli import render

    with answering(ctx) as g:
        chosen = chosen_format(fmt, as_json=as_json, formats=FORMATS, default="markdown")
        since_us = time_us(since or f"{sk.DEFAULT_WINDOW_DAYS}d")
        with _service(g.settings()) as skills:
            rows = skills.report(since_us)
        if chosen == "json":
            print(
                json.dumps(json_form([report_json(r) for r in rows]), indent=2, ensure_ascii=False)
            )
        elif fmt is None and rows and is_tty() and render.fits(len(rows)):
            from rich.console import Console

            Console(highlight=False).print(render.skill_table(rows))
        else:
            print(markdown(rows))


@skill_app.command("last-used")
def last_used(ctx: typer.Context, name: NameArg, as_json: JsonObject = False) -> None:
    """When the skill was last invoked (\"never\" when it never was)."""
    with answering(ctx) as g:
        with _service(g.settings()) as skills:
            found = skills.last_used_us(name)
        if as_json:
            json_line({"skill": name, "last_used_us": found})
        else:
            print(rfc3339(found) or "never")


def report_json(r: sk.SkillMetrics) -> dict[str, Any]:
    """A report row in JSON: upstream's keys, the last use as one moment (``json_form``)."""
    moment = {"last_invoked_ts": ("last_invoked_us", r.last_invoked_us)}
    pairs = (moment.get(k, (k, v)) for k, v in r.to_dict().items() if k != "last_invoked")
    return dict(pairs)


def markdown(rows: list[sk.SkillMetrics]) -> str:
    """Upstream's markdown table (or its empty-window line)."""
    if not rows:
        return EMPTY
    lines = [HEADER, RULE]
    for r in rows:
        lines.append(
            f"| {safe(r.skill_name)} | {r.total_invocations} | {r.success_rate * 100:.1f}% "
            f"| {r.p50_duration_ms} | {r.p95_duration_ms} | {r.last_invoked_ts} "
            f"| {r.recommendation.label} |"
        )
    return "\n".join(lines)


@contextmanager
def _service(settings: Settings) -> Iterator[SkillService]:
    """The skill reads over the ledger ``settings`` name."""
    from kei.app.skills import SkillService

    with open_ledger(settings) as ledger:
        yield SkillService(ledger, seal_key=seal_key(settings))
