"""Resources and prompts: what a client reads into a model's context without a tool call.

Resources (JSON, each with the ``position`` it was computed at): ``kei://agents/{root}/tree``,
``kei://costs/report`` and ``kei://costs/report/{by}``, ``kei://skills`` and
``skill://{name}`` (a skill's metrics over the last 30 days, as ``kei skill report``, and
under ``imported`` the doc section ``kei import project`` wrote to memory for a name
``<project>::<stem>::<section>``),
``kei://events/recent``. Prompts: ``handoff`` (an agent's state, history and cost, for
whoever takes its work over) and ``retro`` (a session's retrospective, as ``kei retro
show``). A resource or prompt that cannot answer is a protocol error, as MCP says.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from mcp.server.mcpserver import MCPServer
from msgspec.structs import asdict

from kei.adapters.mcp.calls import Calls
from kei.adapters.mcp.reads import MAX_ITEMS, report_answer, tree_answer
from kei.app.json_form import json_form
from kei.app.services import Services
from kei.errors import InputError

JSON: Final = "application/json"
RECENT: Final = 50
WINDOW_US: Final = 30 * 86_400 * 1_000_000


def _text(position: int, answer: dict[str, Any]) -> str:
    return json.dumps(json_form({"position": position, **answer}), ensure_ascii=False, default=str)


def register_views(server: MCPServer, calls: Calls, services: Services) -> None:
    """Add the resources and prompts."""

    @server.resource("kei://agents/{root}/tree", name="agent-tree", mime_type=JSON)
    async def agent_tree(root: str) -> str:
        """ROOT and every agent below it, with status and current cost."""
        return await calls.run(lambda: _text(*tree_answer(services, root)))

    @server.resource("kei://costs/report", name="cost-report", mime_type=JSON)
    async def cost_report() -> str:
        """Exact cost totals per agent."""
        return await calls.run(lambda: _text(*report_answer(services, "agent")))

    @server.resource("kei://costs/report/{by}", name="cost-report-by", mime_type=JSON)
    async def cost_report_by(by: str) -> str:
        """Exact cost totals per agent, provider, model or UTC day."""
        return await calls.run(lambda: _text(*report_answer(services, by)))

    @server.resource("kei://skills", name="skills", mime_type=JSON)
    async def skills() -> str:
        """Every skill's metrics over the last 30 days."""
        return await calls.run(lambda: _skills(services, None))

    @server.resource("skill://{name}", name="skill", mime_type=JSON)
    async def skill(name: str) -> str:
        """One skill's metrics over the last 30 days."""
        return await calls.run(lambda: _skills(services, name))

    @server.resource("kei://events/recent", name="recent-events", mime_type=JSON)
    async def recent_events() -> str:
        """The latest 50 events, oldest first."""
        return await calls.run(lambda: _recent(services))

    @server.prompt(name="handoff", title="Hand-off summary of an agent")
    async def handoff(agent_id: str) -> str:
        """An agent's state, history and cost, for whoever takes its work over."""
        return await calls.run(lambda: _handoff(services, agent_id))

    @server.prompt(name="retro", title="Session retrospective")
    async def retro(session: str) -> str:
        """A session's retrospective from its ingested transcript (`kei retro ingest`)."""
        return await calls.run(lambda: _retro(services, session))


def _skills(services: Services, name: str | None) -> str:
    ledger = services.ledger
    position = ledger.store.max_position()
    since = time.time_ns() // 1000 - WINDOW_US
    metrics = [asdict(m) for m in services.skills().report(since)]
    if name is None:
        return _text(position, {"skills": metrics[:MAX_ITEMS]})
    metrics = [m for m in metrics if m["skill_name"] == name]
    imported = _imported_skill(services, name)
    if not metrics and imported is None:
        raise InputError(f"no use of skill {name!r} recorded in the last 30 days")
    return _text(position, {"skills": metrics[:MAX_ITEMS], "imported": imported})


def _imported_skill(services: Services, name: str) -> dict[str, Any] | None:
    """A doc section ``kei import project`` wrote to memory, named as upstream named its
    skill fragments: ``<project>::<stem>::<section>`` (namespace ``skills/<project>``,
    key ``<stem>::<section>``); None when there is none."""
    project, sep, key = name.partition("::")
    if not sep or "::" not in key:
        return None
    item = services.memory().get(f"skills/{project}", key)
    return None if item is None or item.get("kind") != "skill" else item


def _recent(services: Services) -> str:
    from kei.app.ledger.tail import event_dict, latest

    shown, head = latest(services.ledger.store, RECENT)
    return _text(0 if head is None else head.position, {"events": [event_dict(e) for e in shown]})


def _handoff(services: Services, agent_id: str) -> str:
    from kei.app.agent_writes import agent_stream
    from kei.app.ledger.tail import summary
    from kei.domain.agents.money import format_usd
    from kei.errors import UnknownAgentError

    agents = services.agents().caught_up()
    row = agents.get(agent_id)
    if row is None:
        raise UnknownAgentError(f"no agent with id {agent_id}")
    history = agents.ledger.read_stream(agent_stream(agent_id))
    spent = services.costs().agent_total(agent_id)
    lines = [
        f"Hand-off of agent {agent_id} (kei log position {agents.models.position()}).",
        f"Status: {row['status']}; branch {row['branch']}; parent {row['parent_agent_id'] or '-'}.",
        f"Cost so far: {spent} micro-cents ({format_usd(spent)}).",
        "History, oldest first:",
        *(f"- {e.type}: {summary(e)}" for e in history[-MAX_ITEMS:]),
        "Continue its work from here; record what you do with kei's agent tools.",
    ]
    return "\n".join(lines)


def _retro(services: Services, session: str) -> str:
    from kei.domain.retro.sessions import retrospective

    retro_service = services.retro()
    found = retrospective(retro_service.events(session), session)
    if found is None:
        raise InputError(f"no events for session {session!r}", hint="run `kei retro ingest` first")
    data = asdict(found) | {"duration_us": found.duration_us}
    position = retro_service.models.position()
    return (
        f"Retrospective of session {session} (kei log position {position}): what went well, "
        "what failed, what to change next time. The facts:\n"
        + json.dumps(data, ensure_ascii=False, default=str)
    )
