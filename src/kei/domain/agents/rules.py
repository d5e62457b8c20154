"""Agent ledger rules: what may be appended, given what the log already holds.

Pure functions, no I/O and no clock. The caller folds the log into a
:class:`LedgerState` with :func:`apply`, asks a ``decide_*`` function about one
command, and appends what it returns. It trusts that the events it folds were
read from the log (verification is the caller's job). Rules (KeiSeiKit
kei-ledger, ``docs/events.md`` §7):

- Transition table (:data:`TRANSITIONS`): running → done | failed,
  done | failed → merged, as the agent-ledger issue pins it. Nothing leaves
  merged; there is no re-open.
- Repeating the command that produced the current status (a second ``done``,
  ``fail`` or ``merged``) is a :class:`NoOp`: nothing is appended and the first
  summary or reason is kept, as upstream's test pins. Any other move outside
  the table is refused with :class:`TransitionError`.
- **A failed agent can be merged** (upstream's table, which the issue keeps; a
  failed branch is sometimes merged for its partial work). Whether the work was
  good is the outcome event's job (functional / partial / scaffolding / fail), so
  reports read the outcome, never "merged", as success.
- **``rejected`` is not a status**: upstream never reaches it. A failed agent is
  the rejected one; a done agent that is never merged stays done.
- Branch and parent branch are at most 256 characters (256 passes, 257 fails).
- ``dna`` and ``fork_parent`` must pass :func:`kei.domain.agents.dna.parse_dna`; any
  number of agents may have no DNA. An agent id or a DNA used twice is refused,
  and the message says which (a duplicate id is never called a DNA collision).
- ``parent_agent_id``, when given, must name an agent forked earlier, so the
  agent tree has no cycles.
- Costs need a known agent in any status; outcomes a done, failed or merged one.
  A cost event can be amended once; later corrections amend the amendment.

:func:`apply` is the fold (:mod:`kei.domain.agents.state`, re-exported here). It
mutates the state in place and applies only what the table allows, so a log
written by racing writers still folds deterministically; events it had to skip are
counted in ``LedgerState.ignored``.

Example::

    >>> s = LedgerState()
    >>> decide_fork(s, AgentForked(agent_id="a", branch="agent/a")).payloads[0].agent_id
    'a'
"""

from __future__ import annotations

from typing import Final, cast

from kei.domain.agents.dna import parse_dna
from kei.domain.agents.state import (
    COST_TYPES,
    FINISHED,
    TRANSITIONS,
    Accepted,
    AgentState,
    Decision,
    LedgerState,
    NoOp,
    apply,
    apply_payload,
)
from kei.domain.catalog.pricing import recorded_speed
from kei.domain.events import (
    OUTCOMES,
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    CostAmended,
    CostRecorded,
    Outcome,
    OutcomeRecorded,
    Payload,
    SkillInvoked,
    TokenUsage,
)
from kei.domain.events.limits import check_payload
from kei.domain.log.recorded import RecordedEvent
from kei.errors import (
    AlreadyAmendedError,
    DnaCollisionError,
    DuplicateAgentError,
    InputError,
    TransitionError,
    UnknownAgentError,
)
from kei.limits import LIMITS

_SHOWN: Final = 80
__all__ = [
    "COST_TYPES", "FINISHED", "TRANSITIONS", "Accepted",
    "AgentState", "Decision", "LedgerState", "NoOp",
    "apply", "apply_payload", "decide_amend", "decide_cost", "decide_done", "decide_fail",
    "decide_fork", "decide_merged", "decide_outcome", "decide_skill",
]  # fmt: skip


def decide_fork(state: LedgerState, request: AgentForked) -> Accepted:
    """Accept a new agent, or refuse it naming the field or identity at fault."""
    who = request.agent_id
    if not who:
        raise InputError("agent id must not be empty")
    for name, value in (("branch", request.branch), ("parent_branch", request.parent_branch)):
        if value is not None and len(value) > LIMITS.max_branch_chars:
            raise InputError(
                f"agent {_show(who)}: {name} length {len(value)} exceeds cap {LIMITS.max_branch_chars}"
            )
    for name, dna in (("dna", request.dna), ("fork_parent", request.fork_parent)):
        if dna is not None:
            try:
                parse_dna(dna)
            except InputError as exc:
                raise InputError(f"agent {_show(who)}: {name}: {exc}") from exc
    if who in state.agents:
        raise DuplicateAgentError(f"agent {_show(who)} already exists: agent ids are unique")
    if request.dna is not None and request.dna in state.by_dna:
        raise DnaCollisionError(
            f"agent {_show(who)}: dna collision: {_show(request.dna)} already present "
            "— regenerate nonce and retry",
            hint=f"agent {_show(state.by_dna[request.dna])} has that DNA",
        )
    parent = request.parent_agent_id
    if parent is not None and parent not in state.agents:
        raise UnknownAgentError(f"agent {_show(who)}: parent agent {_show(parent)} not found")
    return Accepted((request,))


def decide_done(state: LedgerState, agent_id: str, *, summary: str) -> Decision:
    """running → done; a second done is a no-op that keeps the first summary."""
    return _transition(state, agent_id, "done", AgentCompleted(agent_id=agent_id, summary=summary))


def decide_fail(state: LedgerState, agent_id: str, *, reason: str) -> Decision:
    """running → failed; a second fail is a no-op that keeps the first reason."""
    return _transition(state, agent_id, "failed", AgentFailed(agent_id=agent_id, reason=reason))


def decide_merged(state: LedgerState, agent_id: str) -> Decision:
    """done | failed → merged; a second merge is a no-op."""
    return _transition(state, agent_id, "merged", AgentMerged(agent_id=agent_id))


def decide_outcome(
    state: LedgerState,
    agent_id: str,
    *,
    outcome: str,
    escalation_depth: int | None = None,
    stub_count: int | None = None,
) -> Accepted:
    """Record how a finished agent's work turned out; a later outcome wins."""
    if outcome not in OUTCOMES:
        raise InputError(
            f"agent {_show(agent_id)}: outcome {_show(outcome)} is not one of {', '.join(OUTCOMES)}"
        )
    _check_count(agent_id, "escalation_depth", escalation_depth)
    _check_count(agent_id, "stub_count", stub_count)
    agent = _agent(state, agent_id)
    if agent.status not in FINISHED:
        raise TransitionError(
            f"agent {_show(agent_id)} is {agent.status}: an outcome needs done, failed or merged"
        )
    payload = OutcomeRecorded(
        agent_id=agent_id,
        outcome=cast(Outcome, outcome),  # checked against OUTCOMES above
        escalation_depth=escalation_depth,
        stub_count=stub_count,
    )
    return Accepted((payload,))


def decide_cost(state: LedgerState, request: CostRecorded) -> Accepted:
    """A cost for a known agent, in any status (as upstream), never negative."""
    _check_cost(state, request.agent_id, request.micro_cents, request.usage, request.speed)
    return Accepted((request,))


def decide_amend(state: LedgerState, request: CostAmended, target: RecordedEvent) -> Accepted:
    """Supersede ``target``, the cost event the caller read at the named stream and version."""
    who = request.agent_id
    key = (request.supersedes_stream, request.supersedes_version)
    if (target.stream, target.version) != key:
        raise ValueError("target is not the event the amendment names")
    where = f"{_show(key[0])}@{key[1]}"
    if target.type not in COST_TYPES:
        raise InputError(f"agent {_show(who)}: event {where} is {target.type}, not a cost event")
    owner = getattr(target.payload(), "agent_id", None)
    if owner != who:
        raise InputError(f"agent {_show(who)}: cost event {where} belongs to agent {_show(owner)}")
    if key in state.superseded:
        by_stream, by_version = state.superseded[key]
        raise AlreadyAmendedError(
            f"agent {_show(who)}: cost event {where} was already amended by "
            f"{_show(by_stream)}@{by_version}; amend that one instead"
        )
    _check_cost(state, who, request.micro_cents, request.usage, request.speed)
    return Accepted((request,))


def decide_skill(request: SkillInvoked) -> Accepted:
    """Upstream's two checks; the agent id is free text, as upstream."""
    if not request.skill_name:
        raise InputError("skill_name must not be empty")
    if request.duration_ms is not None:
        _check_count(request.skill_name, "duration_ms", request.duration_ms, label="skill")
    return Accepted((request,))


def _transition(state: LedgerState, agent_id: str, target: str, payload: Payload) -> Decision:
    check_payload(payload)  # a bad summary is an error even where it would be a no-op
    agent = _agent(state, agent_id)
    if agent.status == target:
        kept = {"done": "; first summary kept", "failed": "; first reason kept"}.get(target, "")
        return NoOp(f"agent {_show(agent_id)} is already {target}{kept}; nothing appended")
    if target not in TRANSITIONS[agent.status]:
        needs = " or ".join(sorted(s for s, nxt in TRANSITIONS.items() if target in nxt))
        raise TransitionError(
            f"agent {_show(agent_id)} is {agent.status}: cannot become {target} (only from {needs})"
        )
    return Accepted((payload,))


def _agent(state: LedgerState, agent_id: str) -> AgentState:
    agent = state.agents.get(agent_id)
    if agent is None:
        raise UnknownAgentError(f"no agent with id {_show(agent_id)}")
    return agent


def _check_cost(
    state: LedgerState, agent_id: str, micro: int, usage: TokenUsage, speed: str | None
) -> None:
    _agent(state, agent_id)
    if speed is not None and not isinstance(speed, str):
        raise InputError(f"agent {_show(agent_id)}: speed must be a string, found {speed!r:.40}")
    recorded_speed(speed)  # a word, or an InputError naming what it is
    _check_count(agent_id, "micro_cents", micro)
    for name in TokenUsage.__struct_fields__:
        _check_count(agent_id, name, getattr(usage, name))


def _check_count(who: str, name: str, value: int | None, *, label: str = "agent") -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{label} {_show(who)}: {name} must be an integer, found {value!r:.40}")
    if value < 0:
        raise InputError(f"{label} {_show(who)}: {name} must be >= 0, found {value}")


def _show(value: str | None) -> str:
    """Untrusted text on one line, bounded: bare when printable, else repr."""
    if value is None:
        return "None"
    if value and value.isprintable() and len(value) <= _SHOWN:
        return value
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…")
