"""``kei agent ...``: the agent ledger (upstream kei-ledger's verbs) over the event log.

Thin: the rules live in ``kei.domain.agents.rules``, the appends and lookups in
``kei.app.agents``. Habits (upstream's, in kei's output conventions):
success messages (``forked <id> -> <branch>``) and "nothing found" notes go to
stderr, data to stdout; ``--json`` writes NDJSON for lists and one object for single
answers. Reads catch the ``agents`` projection up first (``tree`` the ``costs`` one
too). ``list`` and ``tree`` are a rich table and tree on a terminal, upstream's plain
lines when piped (``render.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from kei.adapters.cli.context import (
    answering,
    command_group,
    is_tty,
    open_ledger,
    service_scope,
    stderr,
)
from kei.adapters.cli.exits import Exit
from kei.adapters.cli.limits import INT64_MAX
from kei.adapters.cli.options import (
    AgentStatus,
    JsonLines,
    JsonObject,
    OutcomeOpt,
    number,
    option_group,
    text_option,
)
from kei.adapters.cli.output import json_line
from kei.app.ledger.tail import printable
from kei.domain.events import AgentForked

if TYPE_CHECKING:
    from rich.console import Console

    from kei.adapters.cli.config import Settings
    from kei.app.agent_writes import AgentWriter, Outcome
    from kei.app.agents import AgentService

agent_app, register = command_group("agent", "Agents: fork, finish, merge, and their lineage.")
ARTEFACTS: Final = ("spec.md", "plan.md", "progress.json", "chatlog.md", "handoffs.md", "review.md")

Id = Annotated[str, typer.Argument(metavar="ID", help="The agent id.")]
RootId = Annotated[str, typer.Argument(metavar="ROOT", help="The root agent id.")]
Summary = Annotated[str, typer.Option("--summary", metavar="TEXT", help="What the agent did.")]
Reason = Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why the agent failed.")]
Status = Annotated[AgentStatus | None, typer.Option("--status", help="Only this status.")]


def _service(settings: Settings) -> AbstractContextManager[AgentService]:
    from kei.app.agents import AgentService

    return service_scope(settings, AgentService)


def _say(message: str) -> None:
    stderr().print(message, markup=False)


def _append(
    ctx: typer.Context,
    agent_id: str,
    change: Callable[[AgentWriter], Outcome],
    *,
    as_json: bool,
) -> None:
    """Make one change from the agent's streams (no read model: a hook's fast path), and
    say what it did on stderr (and, with ``--json``, as one object on stdout:
    ``appended`` is 0 for a repeat)."""
    from kei.app.agent_writes import AgentWriter

    with answering(ctx) as g, open_ledger(g.settings(), with_key=True) as ledger:
        done = change(AgentWriter(ledger))
        if as_json:
            json_line({"ok": True, "agent_id": agent_id, "command": ctx.info_name,
                       "appended": done.appended, "message": done.message})  # fmt: skip
        _say(done.message)


def _lineage() -> dict[str, Any]:
    """AgentForked's lineage fields and their options, made when ``fork`` is built."""
    return {
        "parent_agent_id": text_option("--parent", "ID", "Parent agent id."),
        "parent_branch": text_option("--parent-branch", "BRANCH", "Parent branch."),
        "spec_sha": text_option("--spec-sha", "SHA", "Spec hash."),
        "worktree": text_option("--worktree", "DIR", "Worktree path."),
        "dna": text_option("--dna", "DNA", "The agent's DNA (unique)."),
        "creator": text_option("--creator", "DNA", "DNA or id of the spawner."),
        "fork_parent": text_option("--fork-parent", "DNA", "DNA forked from."),
    }


@agent_app.command("fork")
@option_group("lineage", _lineage, dict)
def fork(
    ctx: typer.Context,
    agent_id: Id,
    branch: Annotated[
        str, typer.Argument(metavar="BRANCH", help="The agent's branch (at most 256 characters).")
    ],
    *,
    lineage: dict[str, Any],
    as_json: JsonObject = False,
) -> None:
    """Record a new running agent; its id and DNA must be unused."""
    request = AgentForked(agent_id=agent_id, branch=branch, **lineage)
    _append(ctx, agent_id, lambda service: service.fork(request), as_json=as_json)


@agent_app.command("done")
def done(ctx: typer.Context, agent_id: Id, summary: Summary, as_json: JsonObject = False) -> None:
    """running -> done; a second done keeps the first summary and appends nothing."""
    _append(ctx, agent_id, lambda service: service.done(agent_id, summary), as_json=as_json)


@agent_app.command("fail")
def fail(ctx: typer.Context, agent_id: Id, reason: Reason, as_json: JsonObject = False) -> None:
    """running -> failed; a second fail keeps the first reason and appends nothing."""
    _append(ctx, agent_id, lambda service: service.fail(agent_id, reason), as_json=as_json)


@agent_app.command("merged")
def merged(ctx: typer.Context, agent_id: Id, as_json: JsonObject = False) -> None:
    """done | failed -> merged."""
    _append(ctx, agent_id, lambda service: service.merged(agent_id), as_json=as_json)


@agent_app.command("outcome")
def outcome(
    ctx: typer.Context,
    agent_id: Id,
    result: OutcomeOpt,
    escalation_depth: Annotated[
        int | None,
        number("--escalation-depth", least=0, most=INT64_MAX, help="0 = first pass."),
    ] = None,
    stubs: Annotated[
        int | None,
        number("--stubs", least=0, most=INT64_MAX, help="Stubs left in the work."),
    ] = None,
    as_json: JsonObject = False,
) -> None:
    """Record how a finished agent's work turned out; a later outcome wins."""
    _append(
        ctx,
        agent_id,
        lambda service: service.outcome(agent_id, result, escalation_depth, stubs),
        as_json=as_json,
    )


@agent_app.command("list")
def list_agents(ctx: typer.Context, status: Status = None, as_json: JsonLines = False) -> None:
    """Every agent, newest first: id, status, branch, fork time, parent, spec."""
    from kei.adapters.cli import render

    with answering(ctx) as g, _service(g.settings()) as service:
        t = service.caught_up().projection.table
        where = None if status is None else t.c.status == status
        columns = None if as_json else [t.c[c] for c in render.LIST_COLUMNS]
        rows = service.rows(where, order=(t.c.forked_us.desc(), t.c.id.desc()), columns=columns)
        if not rows and not as_json:
            _say("(no agents)")
        elif as_json:
            for r in rows:
                json_line(r)
        elif is_tty() and render.fits(len(rows)):
            _console().print(render.agent_table(rows))
        else:
            sys.stdout.write("".join(render.list_line(r) + "\n" for r in rows))


@agent_app.command("show")
def show(ctx: typer.Context, agent_id: Id, as_json: JsonObject = False) -> None:
    """One agent's row and its whole history from the log."""
    from kei.adapters.cli.output import EventPrinter
    from kei.app.agent_writes import agent_stream
    from kei.app.ledger.tail import event_dict
    from kei.errors import UnknownAgentError

    with answering(ctx) as g, _service(g.settings()) as service:
        row = service.caught_up().get(agent_id)
        if row is None:
            raise UnknownAgentError(f"no agent with id {agent_id}")
        history = service.ledger.read_stream(agent_stream(agent_id))
        if as_json:
            json_line({"agent": row, "events": [event_dict(e) for e in history]})
            return
        for key, value in row.items():
            sys.stdout.write(f"{key}: {_field(key, value)}\n")
        printer = EventPrinter()
        for event in history:
            printer.show(event)


@agent_app.command("tree")
def tree_cmd(ctx: typer.Context, root: RootId, as_json: JsonLines = False) -> None:
    """ROOT and every agent below it (by parent agent id), indented by depth, with status
    and current cost."""
    from kei.adapters.cli import render
    from kei.adapters.cli.commands.cost_cmd import read_costs
    from kei.app import cost_reads

    with answering(ctx) as g:
        nodes = read_costs(g.settings(), lambda s, c: cost_reads.tree(s, root, c, full=as_json))
        if as_json:
            for n in nodes:
                cost = {"micro_cents": n.cost.micro_cents, "unverified_events": n.cost.unverified}
                json_line({"depth": n.depth, **n.row, **cost})
        elif is_tty() and render.fits(len(nodes)):
            _console().print(render.agent_tree(nodes))
        else:
            sys.stdout.write(render.tree_text(nodes))


@agent_app.command("descendants")
def descendants_cmd(
    ctx: typer.Context,
    dna: Annotated[
        str, typer.Argument(metavar="DNA", help="The DNA (or creator id) to start from.")
    ],
    depth: Annotated[
        int | None,
        number("--depth", help="Levels to follow (default: all)."),
    ] = None,
    as_json: JsonLines = False,
) -> None:
    """Agents forked from or spawned by DNA, and theirs, at any depth."""
    from kei.app.agents import descendants

    with answering(ctx) as g, _service(g.settings()) as service:
        found = descendants(service.caught_up(), dna, depth)
        if not found and not as_json:
            _say(f"(no descendants for {dna})")
        for d in found:
            r = d.row
            if as_json:
                json_line({"depth": d.depth, "relation": d.relation, "via": d.via, **r})
                continue
            sys.stdout.write(
                f"{r['id']}\t{d.relation}\t{r['status']}\t{r['branch']}\tdepth={d.depth}\n"
            )


@agent_app.command("validate")
def validate(
    ctx: typer.Context,
    agent_id: Annotated[
        str, typer.Argument(metavar="ID", help="The agent id (an agent/ prefix is dropped).")
    ],
    repo: Annotated[
        Path, typer.Option("--repo", metavar="DIR", help="The repository root.", file_okay=False)
    ],
    as_json: JsonObject = False,
) -> None:
    """Check the six artefacts under REPO/.claude/agents/ID/; exit 2 when some are missing."""
    with answering(ctx):
        who = agent_id.removeprefix("agent/")
        base = repo / ".claude" / "agents" / who
        missing = [a for a in ARTEFACTS if not (base / a).is_file()]
        if as_json:
            json_line({"ok": not missing, "agent_id": who, "missing": missing})
        elif not missing:
            sys.stdout.write(f"OK: all {len(ARTEFACTS)} artefacts present for {who}\n")
        else:
            _say(f"MISSING for {who}:")
            for name in missing:
                _say(f"  - {name}")
        if missing:
            raise typer.Exit(int(Exit.USAGE))


def _console() -> Console:
    from rich.console import Console  # rich only for a terminal's tree and table

    return Console(highlight=False)


def _field(key: str, value: Any) -> str:
    from kei.adapters.cli.render import utc_time

    if key.endswith("_us"):
        return utc_time(value)
    return "-" if value is None else printable(str(value))
