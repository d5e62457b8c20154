"""Agent ledger rules (kei.domain.agents.rules): upstream's pinned behaviours and the fold."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain import events as ev
from kei.domain.agents import rules as ag
from kei.domain.log.recorded import RecordedEvent
from kei.errors import (
    AlreadyAmendedError,
    DnaCollisionError,
    DuplicateAgentError,
    InputError,
    LedgerStateError,
    TransitionError,
    UnknownAgentError,
)

DNA = "edit-local::NG-FW::5435F821::AC73A6A3-b3d36aa6"
DNA2 = "edit-local::NG-FW::5435F821::AC73A6A3-00000001"


def _event(payload: ev.Payload, stream: str, version: int) -> RecordedEvent:
    """A recorded event whose payload goes through the real codec."""
    name = ev.event_type_of(payload).name
    raw = ev.encode_payload(payload)
    return RecordedEvent(0, None, stream, version, name, 1, 0, "", b"", raw, None, None)


class Log:
    """A decide-then-append loop over an in-memory list, folding with apply."""

    def __init__(self) -> None:
        self.state = ag.LedgerState()
        self.events: list[RecordedEvent] = []
        self.versions: dict[str, int] = {}

    def run(self, decision: ag.Decision) -> ag.Decision:
        if isinstance(decision, ag.Accepted):
            for payload in decision.payloads:
                stream = getattr(payload, "agent_id", None) or "kei.skills"
                self.versions[stream] = self.versions.get(stream, 0) + 1
                event = _event(payload, stream, self.versions[stream])
                self.events.append(event)
                ag.apply(self.state, event)
        return decision

    def fork(self, agent_id: str, branch: str = "main", **kw: str | None) -> ag.Decision:
        return self.run(
            ag.decide_fork(self.state, ev.AgentForked(agent_id=agent_id, branch=branch, **kw))
        )


@pytest.fixture
def log() -> Log:
    return Log()


# --- upstream §11: ledger --------------------------------------------------------------


def test_second_done_appends_nothing_and_keeps_first_summary(log: Log) -> None:
    log.fork("a")
    assert isinstance(log.run(ag.decide_done(log.state, "a", summary="first")), ag.Accepted)
    again = log.run(ag.decide_done(log.state, "a", summary="second"))
    assert isinstance(again, ag.NoOp)
    assert again.message == "agent a is already done; first summary kept; nothing appended"
    assert len(log.events) == 2
    assert log.state.agents["a"].summary == "first"


def test_duplicate_id_is_not_a_dna_collision(log: Log) -> None:
    log.fork("a", dna=DNA)
    with pytest.raises(DuplicateAgentError, match="agent a already exists") as info:
        log.fork("a", dna=DNA2)
    assert not isinstance(info.value, DnaCollisionError)
    assert "dna collision" not in str(info.value)


def test_duplicate_dna_is_a_collision_in_upstreams_words(log: Log) -> None:
    log.fork("a", dna=DNA)
    with pytest.raises(DnaCollisionError) as info:
        log.fork("b", dna=DNA)
    assert str(info.value) == (
        f"agent b: dna collision: {DNA} already present — regenerate nonce and retry"
    )
    assert info.value.hint == "agent a has that DNA"


def test_any_number_of_forks_without_dna(log: Log) -> None:
    for i in range(50):
        log.fork(f"a{i}")
    assert len(log.state.agents) == 50 and log.state.by_dna == {}


@pytest.mark.parametrize("field", ["branch", "parent_branch"])
@pytest.mark.parametrize(
    ("length", "ok"), [(256, True), (257, False)], ids=["256-accepted", "257-rejected"]
)
def test_branch_cap(log: Log, field: str, length: int, ok: bool) -> None:
    kw = {"branch": "main", field: "é" * length}  # characters, not bytes
    if ok:
        log.fork("a", **kw)
    else:
        with pytest.raises(InputError, match=rf"^agent a: {field} length 257 exceeds cap 256$"):
            log.fork("a", **kw)
        assert log.events == []


# --- transition table ------------------------------------------------------------------

TABLE = [
    # (history, command, expected: "ok" | "noop" | error text)
    ([], "done", "ok"),
    ([], "fail", "ok"),
    ([], "merged", "agent a is running: cannot become merged (only from done or failed)"),
    (["done"], "merged", "ok"),
    (["done"], "fail", "agent a is done: cannot become failed (only from running)"),
    (["fail"], "fail", "noop"),
    (["fail"], "done", "agent a is failed: cannot become done (only from running)"),
    (["fail"], "merged", "ok"),
    (["done", "merged"], "merged", "noop"),
    (["done", "merged"], "done", "agent a is merged: cannot become done (only from running)"),
]
TABLE_IDS = ["running-done", "running-fail", "running-merged", "done-merged", "done-fail",
             "fail-fail-noop", "fail-done", "failed-merged", "merged-merged-noop",
             "merged-done"]  # fmt: skip


def _command(state: ag.LedgerState, name: str, agent: str = "a") -> ag.Decision:
    if name == "done":
        return ag.decide_done(state, agent, summary="s")
    if name == "fail":
        return ag.decide_fail(state, agent, reason="r")
    return ag.decide_merged(state, agent)


@pytest.mark.parametrize(("history", "command", "expected"), TABLE, ids=TABLE_IDS)
def test_transition_table(log: Log, history: list[str], command: str, expected: str) -> None:
    log.fork("a")
    for step in history:
        log.run(_command(log.state, step))
    before = len(log.events)
    if expected == "ok":
        assert isinstance(log.run(_command(log.state, command)), ag.Accepted)
    elif expected == "noop":
        assert isinstance(log.run(_command(log.state, command)), ag.NoOp)
        assert len(log.events) == before
    else:
        with pytest.raises(TransitionError, match=f"^{re.escape(expected)}$"):
            _command(log.state, command)


@pytest.mark.parametrize("command", ["done", "fail", "merged"])
def test_unknown_agent_is_refused(log: Log, command: str) -> None:
    with pytest.raises(UnknownAgentError, match=r"^no agent with id ghost$"):
        _command(log.state, command, "ghost")


# --- fork checks -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["dna", "fork_parent"])
def test_bad_dna_names_field_and_segment(log: Log, field: str) -> None:
    bad = "x::y::zz::ABCDEF01-deadbeef"
    with pytest.raises(InputError, match=rf"^agent a: {field}: DNA .* scope segment 'zz'"):
        log.fork("a", **{field: bad})


def test_empty_dna_is_refused_not_a_second_null(log: Log) -> None:
    with pytest.raises(InputError, match="agent a: dna: DNA '': empty"):
        log.fork("a", dna="")


def test_parent_must_exist_so_the_tree_has_no_cycles(log: Log) -> None:
    with pytest.raises(UnknownAgentError, match=r"^agent a: parent agent a not found$"):
        log.fork("a", parent_agent_id="a")
    log.fork("p")
    log.fork("c", parent_agent_id="p")
    assert set(log.state.agents) == {"p", "c"}


def test_empty_agent_id_and_hostile_text_stay_on_one_line(log: Log) -> None:
    with pytest.raises(InputError, match="agent id must not be empty"):
        log.fork("")
    with pytest.raises(InputError) as info:
        log.fork("evil\nid", branch="x" * 300)
    assert "\n" not in str(info.value) and "'evil\\nid'" in str(info.value)


# --- outcome, costs, skills ------------------------------------------------------------


def test_outcome_needs_a_finished_agent(log: Log) -> None:
    log.fork("a")
    with pytest.raises(TransitionError, match="agent a is running: an outcome needs"):
        ag.decide_outcome(log.state, "a", outcome="functional")
    log.run(ag.decide_done(log.state, "a", summary="s"))
    log.run(ag.decide_outcome(log.state, "a", outcome="partial", escalation_depth=1, stub_count=0))
    assert log.state.agents["a"].outcome == "partial"


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"outcome": "great"}, "outcome great is not one of functional, partial, scaffolding, fail"),
     ({"outcome": "fail", "stub_count": -1}, "stub_count must be >= 0, found -1"),
     ({"outcome": "fail", "escalation_depth": True}, "escalation_depth must be an integer")],
    ids=["unknown-outcome", "negative-stubs", "bool-depth"],
)  # fmt: skip
def test_outcome_inputs(log: Log, kw: dict[str, object], message: str) -> None:
    log.fork("a")
    with pytest.raises(InputError, match=message):
        ag.decide_outcome(log.state, "a", **kw)  # type: ignore[arg-type]


def _cost(agent: str = "a", micro: int = 5) -> ev.CostRecorded:
    return ev.CostRecorded(agent_id=agent, provider="p", model="m", micro_cents=micro)


def test_cost_needs_a_known_agent_in_any_status(log: Log) -> None:
    with pytest.raises(UnknownAgentError, match=r"^no agent with id ghost$"):
        ag.decide_cost(log.state, _cost("ghost"))
    log.fork("a")
    log.run(ag.decide_fail(log.state, "a", reason="r"))
    assert isinstance(ag.decide_cost(log.state, _cost()), ag.Accepted)
    with pytest.raises(InputError, match="micro_cents must be >= 0"):
        ag.decide_cost(log.state, _cost(micro=-1))
    bad = ev.CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1,
                          usage=ev.TokenUsage(input_tokens=-3))  # fmt: skip
    with pytest.raises(InputError, match="input_tokens must be >= 0"):
        ag.decide_cost(log.state, bad)


def _amend(version: int, agent: str = "a") -> ev.CostAmended:
    return ev.CostAmended(agent_id=agent, supersedes_stream="a", supersedes_version=version,
                          provider="p", model="m", micro_cents=50)  # fmt: skip


def test_amend_supersedes_one_cost_event_once(log: Log) -> None:
    log.fork("a")
    log.run(ag.decide_cost(log.state, _cost()))
    forked, cost = log.events
    with pytest.raises(InputError, match=r"event a@1 is agent\.forked, not a cost event"):
        ag.decide_amend(log.state, _amend(1), forked)
    log.run(ag.decide_amend(log.state, _amend(2), cost))
    with pytest.raises(AlreadyAmendedError, match="a@2 was already amended by a@3"):
        ag.decide_amend(log.state, _amend(2), cost)
    log.run(ag.decide_amend(log.state, _amend(3), log.events[-1]))
    assert log.state.superseded == {("a", 2): ("a", 3), ("a", 3): ("a", 4)}


def test_amend_refuses_another_agents_cost(log: Log) -> None:
    log.fork("a")
    log.fork("b")
    log.run(ag.decide_cost(log.state, _cost()))
    with pytest.raises(InputError, match="agent b: cost event a@2 belongs to agent a"):
        ag.decide_amend(log.state, _amend(2, agent="b"), log.events[-1])


@pytest.mark.parametrize(
    ("skill", "message"),
    [(ev.SkillInvoked(skill_name="", success=True), "skill_name must not be empty"),
     (ev.SkillInvoked(skill_name="s", success=True, duration_ms=-1), "duration_ms must be >= 0")],
    ids=["empty-name", "negative-duration"],
)  # fmt: skip
def test_skill_checks(skill: ev.SkillInvoked, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ag.decide_skill(skill)


# --- the fold --------------------------------------------------------------------------


def test_fold_skips_what_the_table_forbids_and_counts_it() -> None:
    state = ag.LedgerState()
    forked = ev.AgentForked(agent_id="a", branch="b", dna=DNA)
    raced = [forked, ev.AgentFailed(agent_id="a", reason="r"),
             ev.AgentCompleted(agent_id="a", summary="late"), ev.AgentMerged(agent_id="a"),
             ev.AgentForked(agent_id="b", branch="b", dna=DNA), forked]  # fmt: skip
    for i, payload in enumerate(raced, 1):
        ag.apply(state, _event(payload, "a", i))
    assert (state.agents["a"].status, state.agents["a"].reason, state.ignored) == ("merged", "r", 3)
    assert set(state.agents) == {"a"}


def test_fold_does_not_decode_unrelated_events() -> None:
    junk = RecordedEvent(0, None, "s", 1, "cost.recorded", 1, 0, "", b"", b"\xc1", None, None)
    assert ag.apply(ag.LedgerState(), junk) == ag.LedgerState()


# --- property: accepted commands never make an invalid transition ------------------------

AGENTS = ["a", "b", "c"]
COMMANDS = st.tuples(
    st.sampled_from(["fork", "done", "fail", "merged", "outcome", "cost", "amend"]),
    st.sampled_from(AGENTS),
    st.sampled_from([None, DNA, DNA2]),
    st.sampled_from([None, *AGENTS]),
)


@dataclass
class Step:
    name: str
    agent: str
    dna: str | None
    parent: str | None


def _decide(log: Log, step: Step) -> ag.Decision:
    state = log.state
    if step.name == "fork":
        return ag.decide_fork(state, ev.AgentForked(
            agent_id=step.agent, branch="b", dna=step.dna, parent_agent_id=step.parent))  # fmt: skip
    if step.name == "outcome":
        return ag.decide_outcome(state, step.agent, outcome="functional")
    if step.name == "cost":
        return ag.decide_cost(state, _cost(step.agent))
    if step.name == "amend":
        costs = [e for e in log.events if e.type in ag.COST_TYPES and e.stream == step.agent]
        if not costs:
            raise LedgerStateError("nothing to amend")
        target = costs[len(costs) // 2]
        return ag.decide_amend(state, ev.CostAmended(
            agent_id=step.agent, supersedes_stream=target.stream,
            supersedes_version=target.version, provider="p", model="m", micro_cents=1,
        ), target)  # fmt: skip
    return _command(state, step.name, step.agent)


@settings(max_examples=300, deadline=None)
@given(st.lists(COMMANDS, max_size=40))
def test_accepted_commands_fold_into_valid_transitions(commands: list[tuple[str, ...]]) -> None:
    log = Log()
    for raw in commands:
        step = Step(*raw)
        before = copy.deepcopy(log.state)
        statuses = {k: a.status for k, a in log.state.agents.items()}
        try:
            decision = log.run(_decide(log, step))
        except (InputError, LedgerStateError):
            assert log.state == before  # a refusal changes nothing
            continue
        if isinstance(decision, ag.NoOp):
            assert log.state == before
        for agent_id, agent in log.state.agents.items():
            old = statuses.get(agent_id)
            assert old in (None, agent.status) or agent.status in ag.TRANSITIONS[old]
        assert log.state.ignored == 0  # the fold never had to skip an accepted event
        assert {a.dna: k for k, a in log.state.agents.items() if a.dna} == log.state.by_dna
    rebuilt = ag.LedgerState()
    for event in log.events:
        ag.apply(rebuilt, event)
    assert rebuilt == log.state
