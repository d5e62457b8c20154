"""The demo's agent team: forks, costs (priced, given, amended), outcomes, the tree and
cost report as ``kei agent`` and ``kei cost`` print them, and ``kei route`` learning
which model is good enough."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from kei.adapters.cli.demo.run import DemoRun
from kei.app.json_form import usd
from kei.domain import events as ev

if TYPE_CHECKING:
    from kei.domain.catalog.catalog import Catalog


# An orchestrator's team, (id, branch, parent); what each one's call cost, (agent, provider,
# model, tokens in, tokens out, µ¢ given or None to price the tokens from the catalog); and
# the amendment of the last call, billed twice.
TEAM: Final = (
    ("orchestrator", "release/1.4", None),
    ("research", "agent/research", "orchestrator"),
    ("implement", "agent/implement", "orchestrator"),
    ("illustrate", "agent/illustrate", "orchestrator"),
    ("tests", "agent/tests", "implement"),
)
SPEND: Final = (
    ("orchestrator", "anthropic", "claude-opus-4-7", 18_000, 2_400, None),
    ("research", "anthropic", "claude-sonnet-4-6", 42_000, 3_100, None),
    ("implement", "local", "qwen2.5-coder:32b", 61_000, 9_800, 2_400_000),  # GPU time
    ("illustrate", "google", "gemini-3-1-flash-image", 0, 3, None),  # 3 images, unverified
    ("tests", "anthropic", "claude-haiku-4-5", 30_000, 4_000, None),
)
AMEND: Final = ("tests", "anthropic", "claude-haiku-4-5", 15_000, 2_000, None)


def step_agents(run: DemoRun) -> None:
    """The team forks, spends (priced from the catalog, given by hand, one amended), one
    agent fails, one is merged with an outcome: what ``kei agent``/``kei cost`` append."""
    from kei.app.agents import AgentService
    from kei.app.costs import CostService, parse_event_name

    ledger, catalog = run.open(), run.catalog()
    before = ledger.store.count()
    with AgentService(ledger) as agents, CostService(ledger) as costs:
        for agent_id, branch, parent in TEAM:
            agents.fork(ev.AgentForked(agent_id=agent_id, branch=branch, parent_agent_id=parent))
        names = [costs.record(ev.CostRecorded(**_charge(catalog, *call))) for call in SPEND]
        stream, version = parse_event_name(names[-1])
        costs.amend(ev.CostAmended(**_charge(catalog, *AMEND), supersedes_stream=stream,
                                   supersedes_version=version,
                                   reason="retried call billed twice"))  # fmt: skip
        agents.fail("tests", "flaky runner: 1 of 212 tests timed out")
        agents.done("implement", "retry fix and 14 new tests")
        agents.merged("implement")
        agents.outcome("implement", "functional", escalation_depth=0, stub_count=0)
        for agent_id in ("research", "illustrate"):
            agents.done(agent_id, "done")
    run.say(
        f"[agents] {ledger.store.count() - before} events: an orchestrator forks 3 agents and a "
        "grandchild; costs priced from the catalog, given, amended; one fails, one merges"
    )
    run.say("[dna] an agent or task can carry a DNA, role::caps::scope::body-nonce (e.g. "
            f"{ROUTED_DNA}); without its nonce it names a task class, what the router "
            "learns about")  # fmt: skip


def _charge(catalog: Catalog, agent: str, provider: str, model: str, tokens_in: int,
            tokens_out: int, given: int | None) -> dict[str, Any]:  # fmt: skip
    """A cost event's fields, priced as ``kei cost record`` prices them."""
    from kei.adapters.cli.commands.cost_cmd import cost_fields

    usage = ev.TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out)
    return {"agent_id": agent, **cost_fields(catalog, provider, model, usage, given)}


def step_show(run: DemoRun) -> None:
    """``kei agent tree orchestrator`` and ``kei cost report``, as they print here."""
    from kei.adapters.cli import render
    from kei.app.costs import CostService

    with CostService(run.open()) as costs:
        nodes = costs.tree("orchestrator", run.catalog())
        report = costs.report("agent", run.catalog())
    shown = (
        ("[tree] kei agent tree orchestrator:", render.agent_tree(nodes), render.tree_text(nodes)),
        ("[cost] kei cost report:", render.cost_table(report), render.report_text(report)),
    )
    for title, fancy, plain in shown:
        run.say(title)
        if run.out.is_terminal:
            run.out.print(fancy)
        else:  # byte for byte what the command prints to a pipe (rich would expand tabs)
            run.out.file.write(plain)


ROUTED_DNA = "coder::rust-test::3F2A9C01::7B1E44D0-9a0c11fe"


def step_route(run: DemoRun) -> None:
    """``kei route``: an unknown task class goes to the top model; six clean first-pass
    successes on the cheap one move its posterior over the bar; the router then picks
    it, and ``explain`` re-derives that decision from the log alone."""
    from kei.app.routing import RouteService
    from kei.domain.routing.select import DecisionInput

    with RouteService(run.open(), run.catalog()) as router:
        first = router.select(DecisionInput(dna=ROUTED_DNA)).event
        run.say(f"[route] kei route select --dna {ROUTED_DNA}: {first.model} "
                f"({first.reason}, n={first.n})")  # fmt: skip
        for _ in range(6):
            pinned = router.select(DecisionInput(dna=ROUTED_DNA, pinned="haiku")).event
            router.outcome(pinned.decision_id, "functional")
        row = router.posteriors(first.task_class)[0]
        run.say(f"[route] 6 tasks of that class pinned to haiku, each recorded functional: "
                f"{row.model} Beta({row.successes + 1}, {row.failures + 1})")  # fmt: skip
        run.say("[route] a posterior Beta(successes + 1, failures + 1) is what the log says "
                "about a model's success rate on a task class; the router takes the cheapest "
                "model whose rate is above the bar with 90% confidence")  # fmt: skip
        again = router.select(DecisionInput(dna=ROUTED_DNA)).event
        run.say(f"[route] kei route select again: {again.model} ({again.reason}, lower bound "
                f"{again.lower_bound:.3f}, ${usd(again.expected_cost_micro_cents)} estimated "
                f"instead of ${usd(first.expected_cost_micro_cents)})")  # fmt: skip
        explained = router.explain(again.decision_id)
    verdict = "identical" if not explained.differences else "DIFFERS"
    run.say(f"[route] kei route explain {again.decision_id}: re-derived from the "
            f"{explained.outcomes_before} outcomes before it, {verdict}")  # fmt: skip
