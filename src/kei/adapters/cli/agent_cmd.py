"""``kei agent ...``: the agent ledger (upstream kei-ledger's verbs) over the event log.

Thin: the rules live in ``kei.domain.agents``, the appends and lookups in
``kei.adapters.agent_service``. Habits (upstream's, in kei's output conventions):
success messages (``forked <id> -> <branch>``) and "nothing found" notes go to
stderr, data to stdout; ``--json`` writes NDJSON for lists and one object for single
answers. Reads catch the ``agents`` projection up first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from kei.adapters.agent_service import AgentService, agent_stream, descendants, tree
from kei.adapters.cli.context import handled, open_ledger, stderr
from kei.adapters.cli.exits import Exit
from kei.adapters.cli.output import EventPrinter, json_line, stdout_closed_ok
from kei.adapters.config import Settings
from kei.adapters.tail import event_dict
from kei.domain.agents import UnknownAgentError
from kei.domain.events import OUTCOMES, AgentForked

agent_app = typer.Typer(
    help="Agents: fork, finish, merge, and their lineage.", no_args_is_help=True
)
ARTEFACTS: Final = ("spec.md", "plan.md", "progress.json", "chatlog.md", "handoffs.md", "review.md")

Id = Annotated[str, typer.Argument(help="The agent id.")]
Json = Annotated[bool, typer.Option("--json", help="JSON output (NDJSON for lists).")]


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")


@contextmanager
def _service(settings: Settings, *, write: bool = False) -> Iterator[AgentService]:
    with (
        open_ledger(settings, with_key=write) as ledger,
        AgentService(ledger, settings.db_url) as service,
    ):
        yield service


def _say(message: str) -> None:
    stderr().print(message, markup=False)


@agent_app.command("fork")
def fork(
    ctx: typer.Context,
    agent_id: Id,
    branch: Annotated[str, typer.Argument(help="The agent's branch (at most 256 characters).")],
    parent: Annotated[str | None, typer.Option("--parent", help="Parent agent id.")] = None,
    parent_branch: Annotated[
        str | None, typer.Option("--parent-branch", help="Parent branch.")
    ] = None,
    spec_sha: Annotated[str | None, typer.Option("--spec-sha", help="Spec hash.")] = None,
    worktree: Annotated[str | None, typer.Option("--worktree", help="Worktree path.")] = None,
    dna: Annotated[str | None, typer.Option("--dna", help="The agent's DNA (unique).")] = None,
    creator: Annotated[
        str | None, typer.Option("--creator", help="DNA or id of the spawner.")
    ] = None,
    fork_parent: Annotated[
        str | None, typer.Option("--fork-parent", help="DNA forked from.")
    ] = None,
) -> None:
    """Record a new running agent; its id and DNA must be unused."""
    request = AgentForked(
        agent_id=agent_id,
        branch=branch,
        parent_agent_id=parent,
        parent_branch=parent_branch,
        spec_sha=spec_sha,
        worktree=worktree,
        dna=dna,
        creator=creator,
        fork_parent=fork_parent,
    )
    with handled(ctx) as g, _service(g.settings(), write=True) as service:
        _say(service.fork(request).message)


@agent_app.command("done")
def done(
    ctx: typer.Context,
    agent_id: Id,
    summary: Annotated[str, typer.Option("--summary", help="What the agent did.")],
) -> None:
    """running -> done; a second done keeps the first summary and appends nothing."""
    with handled(ctx) as g, _service(g.settings(), write=True) as service:
        _say(service.done(agent_id, summary).message)


@agent_app.command("fail")
def fail(
    ctx: typer.Context,
    agent_id: Id,
    reason: Annotated[str, typer.Option("--reason", help="Why the agent failed.")],
) -> None:
    """running -> failed; a second fail keeps the first reason and appends nothing."""
    with handled(ctx) as g, _service(g.settings(), write=True) as service:
        _say(service.fail(agent_id, reason).message)


@agent_app.command("merged")
def merged(ctx: typer.Context, agent_id: Id) -> None:
    """done | failed -> merged."""
    with handled(ctx) as g, _service(g.settings(), write=True) as service:
        _say(service.merged(agent_id).message)


@agent_app.command("outcome")
def outcome(
    ctx: typer.Context,
    agent_id: Id,
    result: Annotated[str, typer.Option("--outcome", help=" | ".join(OUTCOMES))],
    escalation_depth: Annotated[
        int | None, typer.Option("--escalation-depth", help="0 = first pass.")
    ] = None,
    stubs: Annotated[int | None, typer.Option("--stubs", help="Stubs left in the work.")] = None,
) -> None:
    """Record how a finished agent's work turned out; a later outcome wins."""
    with handled(ctx) as g, _service(g.settings(), write=True) as service:
        _say(service.outcome(agent_id, result, escalation_depth, stubs).message)


@agent_app.command("list")
def list_agents(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    as_json: Json = False,
) -> None:
    """Every agent, newest first: id, status, branch, fork time, parent, spec."""
    with handled(ctx) as g, stdout_closed_ok(), _service(g.settings()) as service:
        t = service.caught_up().projection.table
        where = None if status is None else t.c.status == status
        rows = service.rows(where, order=(t.c.forked_us.desc(), t.c.id.desc()))
        if not rows and not as_json:
            _say("(no agents)")
        out = sys.stdout
        for r in rows:
            if as_json:
                json_line(r)
                continue
            parent, spec = r["parent_agent_id"] or "-", (r["spec_sha"] or "-")[:12]
            line = f"{r['id']}\t{r['status']}\t{r['branch']}\t{_time(r['forked_us'])}"
            out.write(f"{line}\tparent={parent}\tspec={spec}\n")


@agent_app.command("show")
def show(ctx: typer.Context, agent_id: Id, as_json: Json = False) -> None:
    """One agent's row and its whole history from the log."""
    with handled(ctx) as g, stdout_closed_ok(), _service(g.settings()) as service:
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
def tree_cmd(
    ctx: typer.Context,
    root: Annotated[str, typer.Argument(help="The root agent id.")],
    as_json: Json = False,
) -> None:
    """ROOT and every agent below it (by parent agent id), indented by depth."""
    with handled(ctx) as g, stdout_closed_ok(), _service(g.settings()) as service:
        lines = []
        for depth, r in tree(service.caught_up(), root, full=as_json):
            if as_json:
                json_line({"depth": depth, **r})
                continue
            lines.append(f"{'  ' * depth}{r['id']} [{r['status']}] branch={r['branch']}\n")
        sys.stdout.write("".join(lines))


@agent_app.command("descendants")
def descendants_cmd(
    ctx: typer.Context,
    dna: Annotated[str, typer.Argument(help="The DNA (or creator id) to start from.")],
    depth: Annotated[
        int | None, typer.Option("--depth", min=1, help="Levels to follow (default: all).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Agents forked from or spawned by DNA, and theirs, at any depth."""
    with handled(ctx) as g, stdout_closed_ok(), _service(g.settings()) as service:
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
    agent_id: Annotated[str, typer.Argument(help="The agent id (an agent/ prefix is dropped).")],
    repo: Annotated[Path, typer.Option("--repo", help="The repository root.")],
) -> None:
    """Check the six artefacts under REPO/.claude/agents/ID/; exit 2 when some are missing."""
    with handled(ctx):
        who = agent_id.removeprefix("agent/")
        base = repo / ".claude" / "agents" / who
        missing = [a for a in ARTEFACTS if not (base / a).is_file()]
        if not missing:
            sys.stdout.write(f"OK: all {len(ARTEFACTS)} artefacts present for {who}\n")
            return
        _say(f"MISSING for {who}:")
        for name in missing:
            _say(f"  - {name}")
        raise typer.Exit(int(Exit.USAGE))


def _time(us: int | None) -> str:
    if us is None:
        return "-"
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(key: str, value: Any) -> str:
    if key.endswith("_us"):
        return _time(value)
    return "-" if value is None else str(value)
