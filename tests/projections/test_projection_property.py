"""Every shipped projection, on both stores: for any valid sequence of agent, cost and
skill commands, the read models caught up command by command have the same digests
as the read models rebuilt from zero, and as ones built with any page size."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.agent_writes import agent_stream
from kei.app.agents import AgentService
from kei.app.costs import CostService
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents import skills as sk
from kei.domain.agents.rules import decide_skill
from kei.domain.events import OUTCOMES, AgentForked, CostAmended, CostRecorded, SkillInvoked
from kei.errors import AgentRuleError, KeiError
from kei.projections.registry import default_projections

VERBS = ("fork", "done", "fail", "merged", "outcome", "cost", "amend", "skill")
Step = tuple[str, int, int]
STEPS = st.lists(
    st.tuples(st.sampled_from(VERBS), st.integers(0, 4), st.integers(0, 4)),
    min_size=1,
    max_size=14,
)


def last_cost_version(ledger: Ledger, agent_id: str) -> int | None:
    costs = [
        e.version
        for e in ledger.read_stream(agent_stream(agent_id))
        if e.type in ("cost.recorded", "cost.amended")
    ]
    return costs[-1] if costs else None


def amend(costs: CostService, ledger: Ledger, who: str, m: int) -> None:
    version = last_cost_version(ledger, who)
    if version is None:
        return
    costs.amend(
        CostAmended(
            agent_id=who,
            supersedes_stream=agent_stream(who),
            supersedes_version=version,
            provider="openai",
            model="gpt-5-mini",
            micro_cents=1_000 * m,
            reason="retry",
        )
    )


def run_step(agents: AgentService, costs: CostService, prefix: str, step: Step) -> None:
    """One command; refusals are part of a valid sequence and are skipped."""
    verb, n, m = step
    who, ledger = f"{prefix}-{n}", agents.ledger
    try:
        if verb == "fork":
            parent = f"{prefix}-{m}" if m < n else None
            agents.fork(AgentForked(agent_id=who, branch=f"b{n}", parent_agent_id=parent))
        elif verb in ("done", "fail", "merged"):
            {"done": lambda: agents.done(who, "ok"), "fail": lambda: agents.fail(who, "no"),
             "merged": lambda: agents.merged(who)}[verb]()  # fmt: skip
        elif verb == "outcome":
            agents.outcome(who, OUTCOMES[m % 4], escalation_depth=m)
        elif verb == "cost":
            request = CostRecorded(
                agent_id=who, provider="anthropic", model="claude-haiku-4", micro_cents=m * 7
            )
            costs.record(request)
        elif verb == "amend":
            amend(costs, ledger, who, m)
        else:
            skill = SkillInvoked(skill_name=f"s{m}", success=n % 2 == 0, duration_ms=n * 10)
            payload = decide_skill(skill).payloads[0]
            ledger.append([NewEvent(sk.skill_stream(skill.skill_name), payload)])
    except (AgentRuleError, KeiError):
        pass


def digests(url: str, ledger: Ledger, *, page_size: int | None = None) -> dict[str, bytes]:
    kwargs = {} if page_size is None else {"page_size": page_size}
    engine = ProjectionEngine(url, ledger.store, default_projections(), **kwargs)
    try:
        engine.catch_up()
        return {name: engine.digest(name) for name in engine.projections}
    finally:
        engine.close()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS, page_size=st.integers(1, 9))
@example(
    steps=[("fork", 0, 0), ("fork", 1, 0), ("cost", 0, 3), ("amend", 0, 2), ("amend", 0, 1),
           ("skill", 1, 1), ("cost", 1, 4), ("done", 0, 0), ("fail", 1, 0), ("merged", 0, 0),
           ("outcome", 0, 1)],
    page_size=2,
)  # fmt: skip
def test_every_projection_incremental_equals_rebuilt(
    store_url: str, ledger: Ledger, steps: list[Step], page_size: int
) -> None:
    prefix = uuid.uuid4().hex[:8]
    with AgentService(ledger) as agents, CostService(ledger) as costs:
        for step in steps:
            run_step(agents, costs, prefix, step)
            digests(store_url, ledger)  # every projection catches up after each command
    incremental = digests(store_url, ledger)
    assert digests(store_url, ledger, page_size=page_size) == incremental  # no new events
    engine = ProjectionEngine(store_url, ledger.store, default_projections(), page_size=page_size)
    try:
        engine.rebuild()
        rebuilt = {name: engine.digest(name) for name in engine.projections}
    finally:
        engine.close()
    assert rebuilt == incremental
