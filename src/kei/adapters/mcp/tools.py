"""The tools that change the log: each calls one ``app/`` service, as the CLI command of
the same name does, inside ``Calls.write`` (so its batch carries its ``mcp.tool.called``).

Arguments are the CLI's options under the same names (``agent_fork`` takes what ``kei
agent fork`` takes); rules, pricing and checks are the services' and the domain's.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

from kei.adapters.mcp.calls import Answer, Calls
from kei.adapters.mcp.services import Services
from kei.domain.events import AgentForked, CostRecorded, MemoryWritten, SkillInvoked, TokenUsage
from kei.domain.events.memory import DEFAULT_NAMESPACE

WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def register_writes(server: MCPServer, calls: Calls, services: Services) -> frozenset[str]:
    """Add every tool that appends (see ``docs/cli.md``, ``kei mcp serve``); their names."""
    tools = _agent_tools(calls, services) + _other_tools(calls, services)
    for fn in tools:
        server.add_tool(fn, annotations=WRITES, structured_output=True)
    return frozenset(fn.__name__ for fn in tools)


def _outcome(outcome: Any) -> Answer:
    return {"message": outcome.message, "appended": outcome.appended}


def _agent_tools(calls: Calls, services: Services) -> list[Any]:
    async def agent_fork(
        ctx: Context,
        agent_id: str,
        branch: str,
        parent: str | None = None,
        parent_branch: str | None = None,
        spec_sha: str | None = None,
        worktree: str | None = None,
        dna: str | None = None,
        creator: str | None = None,
        fork_parent: str | None = None,
    ) -> dict[str, Any]:
        """Record a new running agent (as `kei agent fork`); its id and DNA must be unused."""
        args = {"agent_id": agent_id, "branch": branch, "parent": parent,
                "parent_branch": parent_branch, "spec_sha": spec_sha, "worktree": worktree,
                "dna": dna, "creator": creator, "fork_parent": fork_parent}  # fmt: skip

        def work() -> Answer:
            request = AgentForked(
                agent_id=agent_id, branch=branch, parent_agent_id=parent,
                parent_branch=parent_branch, spec_sha=spec_sha, worktree=worktree, dna=dna,
                creator=creator, fork_parent=fork_parent,
            )  # fmt: skip
            return _outcome(services.agents().fork(request))

        return await calls.write(ctx, "agent_fork", args, work)

    async def agent_done(ctx: Context, agent_id: str, summary: str) -> dict[str, Any]:
        """running -> done (as `kei agent done`); a second done appends nothing."""
        args = {"agent_id": agent_id, "summary": summary}
        work = lambda: _outcome(services.agents().done(agent_id, summary))  # noqa: E731
        return await calls.write(ctx, "agent_done", args, work)

    async def agent_fail(ctx: Context, agent_id: str, reason: str) -> dict[str, Any]:
        """running -> failed (as `kei agent fail`); a second fail appends nothing."""
        args = {"agent_id": agent_id, "reason": reason}
        work = lambda: _outcome(services.agents().fail(agent_id, reason))  # noqa: E731
        return await calls.write(ctx, "agent_fail", args, work)

    async def agent_merged(ctx: Context, agent_id: str) -> dict[str, Any]:
        """done | failed -> merged (as `kei agent merged`)."""
        work = lambda: _outcome(services.agents().merged(agent_id))  # noqa: E731
        return await calls.write(ctx, "agent_merged", {"agent_id": agent_id}, work)

    async def agent_outcome(
        ctx: Context,
        agent_id: str,
        outcome: str,
        escalation_depth: int | None = None,
        stubs: int | None = None,
    ) -> dict[str, Any]:
        """How a finished agent's work turned out: functional | partial | scaffolding | fail."""
        args = {"agent_id": agent_id, "outcome": outcome,
                "escalation_depth": escalation_depth, "stubs": stubs}  # fmt: skip
        agents = services.agents
        work = lambda: _outcome(agents().outcome(agent_id, outcome, escalation_depth, stubs))  # noqa: E731
        return await calls.write(ctx, "agent_outcome", args, work)

    return [agent_fork, agent_done, agent_fail, agent_merged, agent_outcome]


def _other_tools(calls: Calls, services: Services) -> list[Any]:
    async def cost_record(
        ctx: Context,
        agent_id: str,
        provider: str,
        model: str,
        micro_cents: int | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
    ) -> dict[str, Any]:
        """One model call's cost (as `kei cost record`): the amount in micro-cents, or
        both token counts to price it from the catalog."""
        args = {"agent_id": agent_id, "provider": provider, "model": model,
                "micro_cents": micro_cents, "tokens_in": tokens_in, "tokens_out": tokens_out}  # fmt: skip

        def work() -> Answer:
            from kei.app.cost_writes import price_request

            usage = TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out)
            price = price_request(services.catalog, provider, model, usage, micro_cents)
            request = CostRecorded(
                agent_id=agent_id, provider=provider, model=model, usage=usage,
                micro_cents=price.micro_cents, price_entry_id=price.entry_id,
                price_entry_hash=price.entry_hash,
            )  # fmt: skip
            costs = services.costs()
            event = costs.record(request)
            return {"event": event, "micro_cents": price.micro_cents,
                    "total_micro_cents": costs.agent_total(agent_id)}  # fmt: skip

        return await calls.write(ctx, "cost_record", args, work)

    async def memory_write(
        ctx: Context,
        key: str,
        value: str,
        kind: str = "note",
        tags: list[str] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        dna: str | None = None,
        parent_dna: str | None = None,
    ) -> dict[str, Any]:
        """Remember VALUE under KEY (as `kei memory write`); a later write replaces it."""
        from kei.app.memory_writes import tags_of

        args = {"key": key, "value": value, "kind": kind, "tags": tags,
                "namespace": namespace, "dna": dna, "parent_dna": parent_dna}  # fmt: skip

        def work() -> Answer:
            payload = MemoryWritten(namespace=namespace, key=key, value=value, kind=kind,
                                    tags=tags_of(tags or []), dna=dna, parent_dna=parent_dna)  # fmt: skip
            return {"event": services.memory().write(payload)}

        return await calls.write(ctx, "memory_write", args, work)

    async def route_select(
        ctx: Context,
        dna: str,
        prompt: str = "",
        pin: str | None = None,
        policy: str = "bound",
        seed: int | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        """Choose the cheapest model whose posterior clears the bar, and record why (as
        `kei route select`); the prompt itself is not stored, only its SHA-256."""
        import secrets

        import msgspec

        from kei.domain.routing.select import DecisionInput

        args = {"dna": dna, "prompt": prompt, "pin": pin, "policy": policy, "seed": seed,
                "agent": agent}  # fmt: skip

        def work() -> Answer:
            drawn = secrets.randbits(63) if seed is None else seed  # recorded: explain re-derives
            inp = DecisionInput(dna=dna, prompt=prompt, pinned=pin, policy=policy,
                                seed=drawn if policy == "thompson" else None)  # fmt: skip
            routed = services.routes().select(inp, agent_id=agent)
            decided = msgspec.to_builtins(routed.event)
            return {"decision_id": routed.event.decision_id, "event": routed.name, **decided}

        return await calls.write(ctx, "route_select", args, work)

    async def route_outcome(
        ctx: Context, decision_id: str, outcome: str, escalation_depth: int | None = None
    ) -> dict[str, Any]:
        """How the routed work turned out (as `kei route outcome`): what the posteriors learn."""
        args = {"decision_id": decision_id, "outcome": outcome,
                "escalation_depth": escalation_depth}  # fmt: skip
        routes = services.routes
        work = lambda: {"event": routes().outcome(decision_id, outcome, escalation_depth)}  # noqa: E731
        return await calls.write(ctx, "route_outcome", args, work)

    async def skill_record(
        ctx: Context,
        skill_name: str,
        success: bool,
        duration_ms: int | None = None,
        agent: str | None = None,
        trajectory: str | None = None,
    ) -> dict[str, Any]:
        """One use of a skill and whether it worked (as `kei skill record`)."""
        from kei.domain.agents import skills as sk

        args = {"skill_name": skill_name, "success": success, "duration_ms": duration_ms,
                "agent": agent, "trajectory": trajectory}  # fmt: skip

        def work() -> Answer:
            sk.validate_invocation(skill_name, duration_ms)
            payload = SkillInvoked(skill_name=skill_name, success=success,
                                   duration_ms=duration_ms, agent_id=agent,
                                   trajectory_id=trajectory)  # fmt: skip
            event = services.skills().record(payload)
            return {"event": f"{event.stream}:{event.version}", "position": event.position}

        return await calls.write(ctx, "skill_record", args, work)

    return [cost_record, memory_write, route_select, route_outcome, skill_record]
