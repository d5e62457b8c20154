"""The commands that change the log, by name, given their arguments: each calls one
``app/`` service, as the CLI command of the same name does.

Arguments are the CLI's options under the same names (``agent_fork`` takes what ``kei
agent fork`` takes); rules, pricing and checks are the services' and the domain's. The
driving adapters wrap them: ``kei mcp serve`` as tools (``adapters/mcp/tools.py``, which
reads each signature for the tool's schema), ``kei serve`` as ``POST /v1/...`` routes
(``adapters/http/writes.py``, whose request bodies are built from the same signatures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from kei.app.services import Services
from kei.domain.events import AgentForked, CostRecorded, MemoryWritten, SkillInvoked, TokenUsage
from kei.domain.events.memory import DEFAULT_NAMESPACE

Answer = dict[str, Any]


def works(services: Services) -> list[Callable[..., Answer]]:
    """What each changing command does, on the caller's thread, given its arguments."""
    return _agent_works(services) + _other_works(services)


def _outcome(outcome: Any) -> Answer:
    return {"message": outcome.message, "appended": outcome.appended}


def _agent_works(services: Services) -> list[Callable[..., Answer]]:
    def agent_fork(
        agent_id: str,
        branch: str,
        parent: str | None = None,
        parent_branch: str | None = None,
        spec_sha: str | None = None,
        worktree: str | None = None,
        dna: str | None = None,
        creator: str | None = None,
        fork_parent: str | None = None,
    ) -> Answer:
        """Record a new running agent (as `kei agent fork`); its id and DNA must be unused."""
        request = AgentForked(
            agent_id=agent_id, branch=branch, parent_agent_id=parent,
            parent_branch=parent_branch, spec_sha=spec_sha, worktree=worktree, dna=dna,
            creator=creator, fork_parent=fork_parent,
        )  # fmt: skip
        return _outcome(services.agent_writes().fork(request))

    def agent_done(agent_id: str, summary: str) -> Answer:
        """running -> done (as `kei agent done`); a second done appends nothing."""
        return _outcome(services.agent_writes().done(agent_id, summary))

    def agent_fail(agent_id: str, reason: str) -> Answer:
        """running -> failed (as `kei agent fail`); a second fail appends nothing."""
        return _outcome(services.agent_writes().fail(agent_id, reason))

    def agent_merged(agent_id: str) -> Answer:
        """done | failed -> merged (as `kei agent merged`)."""
        return _outcome(services.agent_writes().merged(agent_id))

    def agent_outcome(
        agent_id: str, outcome: str, escalation_depth: int | None = None, stubs: int | None = None
    ) -> Answer:
        """How a finished agent's work turned out: functional | partial | scaffolding | fail."""
        return _outcome(services.agent_writes().outcome(agent_id, outcome, escalation_depth, stubs))

    return [agent_fork, agent_done, agent_fail, agent_merged, agent_outcome]


def _other_works(services: Services) -> list[Callable[..., Answer]]:
    def cost_record(
        agent_id: str,
        provider: str,
        model: str,
        micro_cents: int | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        speed: Literal["standard", "fast"] | None = None,
    ) -> Answer:
        """One model call's cost (as `kei cost record`): the amount in micro-cents, or
        both token counts to price it from the catalog (``speed`` fast: at the entry's
        fast-mode rates, or at standard rates marked speed_unpriced when it has none);
        then the budgets' thresholds."""
        from kei.app.budgets.check import after_costs
        from kei.app.cost_writes import price_request

        usage = TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out)
        price = price_request(services.catalog, provider, model, usage, micro_cents, speed)
        request = CostRecorded(agent_id=agent_id, provider=provider, model=model, usage=usage,
                               **price.fields())  # fmt: skip
        costs = services.costs()
        event = costs.record(request)
        added = 0 if price.unpriced else price.micro_cents
        checked = after_costs(services.ledger, seal_key=services.seal_key, added=added)
        answer = {"event": event, "micro_cents": price.micro_cents,
                  "total_micro_cents": costs.agent_total(agent_id),
                  "speed": price.speed, "speed_unpriced": price.speed_unpriced,
                  "budget_crossings": [c.to_dict() for c in checked.crossings]}  # fmt: skip
        if price.unpriced:  # the amount is unknown, not 0
            answer.update(micro_cents=None, unpriced=True, note=price.note)
        elif price.note is not None:  # priced at standard rates: speed_unpriced
            answer.update(note=price.note)
        return answer

    def memory_write(
        key: str,
        value: str,
        kind: str = "note",
        tags: list[str] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        dna: str | None = None,
        parent_dna: str | None = None,
    ) -> Answer:
        """Remember VALUE under KEY (as `kei memory write`); a later write replaces it."""
        from kei.app.memory_writes import tags_of

        payload = MemoryWritten(namespace=namespace, key=key, value=value, kind=kind,
                                tags=tags_of(tags or []), dna=dna, parent_dna=parent_dna)  # fmt: skip
        return {"event": services.memory().write(payload)}

    def route_select(
        dna: str,
        prompt: str = "",
        pin: str | None = None,
        policy: str = "bound",
        seed: int | None = None,
        agent: str | None = None,
        budget: str | None = None,
        budget_micro: int | None = None,
    ) -> Answer:
        """Choose the cheapest model whose posterior clears the bar, and record why (as
        `kei route select`); the prompt itself is not stored, only its SHA-256. A budget
        scope (its amount left) or a budget in micro-cents leaves out dearer models."""
        import secrets

        import msgspec

        from kei.domain.routing.select import DecisionInput

        drawn = secrets.randbits(63) if seed is None else seed  # recorded: explain re-derives
        inp = DecisionInput(dna=dna, prompt=prompt, pinned=pin, policy=policy,
                            seed=drawn if policy == "thompson" else None,
                            budget_micro_cents=budget_micro)  # fmt: skip
        routed = services.routes().select(inp, agent_id=agent, budget=budget)
        decided = msgspec.to_builtins(routed.event)
        return {"decision_id": routed.event.decision_id, "event": routed.name, **decided}

    def route_outcome(
        decision_id: str, outcome: str, escalation_depth: int | None = None
    ) -> Answer:
        """How the routed work turned out (as `kei route outcome`): what the posteriors learn."""
        return {"event": services.routes().outcome(decision_id, outcome, escalation_depth)}

    def skill_record(
        skill_name: str,
        success: bool,
        duration_ms: int | None = None,
        agent: str | None = None,
        trajectory: str | None = None,
    ) -> Answer:
        """One use of a skill and whether it worked (as `kei skill record`)."""
        from kei.domain.agents import skills as sk

        sk.validate_invocation(skill_name, duration_ms)
        payload = SkillInvoked(skill_name=skill_name, success=success, duration_ms=duration_ms,
                               agent_id=agent, trajectory_id=trajectory)  # fmt: skip
        event = services.skills().record(payload)
        return {"event": f"{event.stream}:{event.version}", "position": event.position}

    return [cost_record, memory_write, route_select, route_outcome, skill_record]
