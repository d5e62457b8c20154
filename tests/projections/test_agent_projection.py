"""The ``agents`` read model on both stores: incremental equals rebuilt, whatever the
valid command sequence; page size does not matter; the fold follows the domain's
table even for events appended behind the commands' back."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.agents import AgentService, tree
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain import events
from kei.domain.agents.rules import LedgerState, apply
from kei.domain.events import AgentForked
from kei.errors import AgentRuleError, DnaCollisionError, DuplicateAgentError, KeiError
from kei.projections.agents import Agents

Step = tuple[str, int, int]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["fork", "done", "fail", "merged", "outcome"]),
        st.integers(0, 5),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=12,
)


def run_step(service: AgentService, prefix: str, step: Step) -> None:
    """One command; refusals are part of a valid sequence and are simply skipped."""
    verb, n, m = step
    who = f"{prefix}-{n}"
    try:
        if verb == "fork":
            parent = f"{prefix}-{m}" if m < n else None
            dna = f"impl::p::ABCDEF12::12345678-{m:08x}" if m % 2 else None
            service.fork(AgentForked(agent_id=who, branch=f"b{n}", parent_agent_id=parent, dna=dna))
        elif verb == "done":
            service.done(who, f"summary {m}")
        elif verb == "fail":
            service.fail(who, f"reason {m}")
        elif verb == "merged":
            service.merged(who)
        else:
            outcome = events.OUTCOMES[m % 4]
            service.outcome(who, outcome, escalation_depth=m, stub_count=n)
    except (AgentRuleError, KeiError):
        pass


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS, page_size=st.integers(1, 7))
def test_incremental_equals_rebuilt(
    store_url: str, ledger: Ledger, steps: list[Step], page_size: int
) -> None:
    prefix = uuid.uuid4().hex[:8]
    with AgentService(ledger) as service:
        for step in steps:
            run_step(service, prefix, step)  # each command catches up first
        service.caught_up()
        incremental = service.models.engine.digest("agents")
        small = ProjectionEngine(
            store_url, ledger.store, [Agents("agents_small")], page_size=page_size
        )
        try:
            small.catch_up()
            paged = _rows(service, small)
        finally:
            small.close()
        service.models.engine.rebuild()
        assert service.models.engine.digest("agents") == incremental
        assert paged == _rows(service, service.models.engine)


def _rows(service: AgentService, engine: ProjectionEngine) -> list[tuple[object, ...]]:
    """The rows of an engine's agents table (the digest would include its name)."""
    name = next(iter(engine.projections))
    table = engine.tables[name][0]
    with service.models.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id)).all()
    return [tuple(r) for r in rows]


def test_fold_follows_the_table_for_raw_events(store_url: str, ledger: Ledger) -> None:
    """Events appended without the rules (racing writers, imports) fold as the domain does."""
    raw = [
        AgentForked(agent_id="x", branch="b", dna="impl::p::ABCDEF12::12345678-00000001"),
        AgentForked(agent_id="x", branch="again"),  # duplicate id: skipped
        AgentForked(agent_id="y", branch="b", dna="impl::p::ABCDEF12::12345678-00000001"),
        events.AgentMerged(agent_id="x"),  # running -> merged is not in the table
        events.AgentCompleted(agent_id="x", summary="first"),
        events.AgentFailed(agent_id="x", reason="late"),  # done -> failed: skipped
        events.AgentCompleted(agent_id="x", summary="second"),  # skipped, first kept
        events.AgentMerged(agent_id="x"),
        events.OutcomeRecorded(agent_id="x", outcome="functional", stub_count=0),
        events.AgentCompleted(agent_id="ghost", summary="?"),
    ]
    ledger.append([NewEvent("raw", p) for p in raw])
    with AgentService(ledger) as service:
        rows = {r["id"]: r for r in service.caught_up().rows()}
    assert set(rows) == {"x"}
    x = rows["x"]
    assert (x["branch"], x["status"], x["summary"], x["reason"]) == ("b", "merged", "first", None)
    assert (x["outcome"], x["stub_count"]) == ("functional", 0)
    state = LedgerState()
    for event in ledger.read():
        apply(state, event)
    assert state.agents["x"].status == x["status"]
    assert state.agents["x"].summary == x["summary"]


@pytest.mark.parametrize("n", [300])
def test_many_agents_in_one_page(
    store_url: str, ledger: Ledger, n: int, make_ledger: Callable[..., Ledger]
) -> None:
    """A page with more agents than one chunk of lookups still folds every one."""
    batch = [NewEvent(f"agent/a{i}", AgentForked(agent_id=f"a{i}", branch="b")) for i in range(n)]
    batch += [
        NewEvent(f"agent/a{i}", events.AgentFailed(agent_id=f"a{i}", reason="r")) for i in range(n)
    ]
    for i in range(0, len(batch), 200):
        ledger.append(batch[i : i + 200])
    with AgentService(ledger) as service:
        rows = service.caught_up().rows()
        assert len(rows) == n and {r["status"] for r in rows} == {"failed"}
        assert {r["stream_version"] for r in rows} == {2}


def test_a_fork_that_loses_the_append_gets_the_second_comers_message(
    store_url: str, ledger: Ledger
) -> None:
    """The streams' version-0 claims, not the read model, decide who wins a race."""
    dna = "impl::p::ABCDEF12::12345678-0000000f"
    ledger.append([NewEvent("agent/x", events.AgentMerged(agent_id="not-x"))])
    ledger.append([NewEvent(f"dna/{dna}", events.DnaClaimed(dna=dna, agent_id="owner"))])
    before = ledger.store.count()
    with AgentService(ledger) as service:
        with pytest.raises(DuplicateAgentError, match="agent x already exists"):
            service.fork(AgentForked(agent_id="x", branch="b"))
        with pytest.raises(DnaCollisionError, match="dna collision") as caught:
            service.fork(AgentForked(agent_id="y", branch="b", dna=dna))
        assert caught.value.hint == "agent owner has that DNA"
    assert ledger.store.count() == before


def test_a_cycle_of_raw_events_still_gives_a_finite_tree(store_url: str, ledger: Ledger) -> None:
    """Commands cannot make a cycle (a parent must exist first); raw events can."""
    ledger.append(
        [
            NewEvent("raw", AgentForked(agent_id="a", branch="a", parent_agent_id="b")),
            NewEvent("raw", AgentForked(agent_id="b", branch="b", parent_agent_id="a")),
            NewEvent("raw", AgentForked(agent_id="c", branch="c", parent_agent_id="b")),
        ]
    )
    with AgentService(ledger) as service:
        found = tree(service.caught_up(), "a")
    assert [(depth, row["id"]) for depth, row in found] == [(0, "a"), (1, "b"), (2, "c")]


def test_reopening_three_times_is_idempotent(store_url: str, ledger: Ledger) -> None:
    for n in range(3):
        with AgentService(ledger) as service:
            service.fork(AgentForked(agent_id=f"a{n}", branch="b"))
            assert len(service.caught_up().rows()) == n + 1
            digest = service.models.engine.digest("agents")
    with AgentService(ledger) as service:
        service.models.engine.rebuild()
        assert service.models.engine.digest("agents") == digest
