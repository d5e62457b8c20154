"""The agent ledger's state as its rules see it, and the fold that builds it.

:func:`apply` folds events into a :class:`LedgerState` in place (no per-event
copies) and applies only what the transition table allows, so a log written by
racing writers still folds the same way everywhere; events it had to skip are
counted in ``LedgerState.ignored``. The rules that decide what may be appended live
in :mod:`kei.domain.agents.rules`, which re-exports the state types here (the
errors live in :mod:`kei.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from msgspec import Struct, field

from kei.domain.events import (
    REGISTRY,
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    CostAmended,
    OutcomeRecorded,
    Payload,
)
from kei.domain.log.recorded import RecordedEvent

TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "running": frozenset({"done", "failed"}),
    "done": frozenset({"merged"}),
    "failed": frozenset({"merged"}),
    "merged": frozenset(),
}
COST_TYPES: Final = frozenset({"cost.recorded", "cost.amended"})
FINISHED: Final = frozenset({"done", "failed", "merged"})


class AgentState(Struct):
    """One agent as the rules see it; mutated in place by :func:`apply`."""

    agent_id: str
    dna: str | None = None
    status: str = "running"
    summary: str | None = None
    reason: str | None = None
    outcome: str | None = None


class LedgerState(Struct):
    """Everything the rules need, keyed for O(1) lookups."""

    agents: dict[str, AgentState] = field(default_factory=dict)
    by_dna: dict[str, str] = field(default_factory=dict)
    superseded: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    ignored: int = 0


class Accepted(Struct, frozen=True):
    """Append these payloads, in order."""

    payloads: tuple[Payload, ...]


class NoOp(Struct, frozen=True):
    """The command is already in effect: append nothing, tell the user why."""

    message: str


Decision = Accepted | NoOp


def apply(state: LedgerState, event: RecordedEvent) -> LedgerState:
    """Fold one event into ``state`` (in place); other event types are skipped undecoded."""
    if event.type in _HANDLED:
        return apply_payload(state, event.payload(), stream=event.stream, version=event.version)
    return state


def apply_payload(
    state: LedgerState, payload: Payload, *, stream: str, version: int
) -> LedgerState:
    """Fold a payload that is (or is about to be) stored at ``stream``@``version``."""
    fold_payload(state, payload, stream=stream, version=version)
    return state


def fold_payload(state: LedgerState, payload: Payload, *, stream: str, version: int) -> bool:
    """``apply_payload``, saying whether the table allowed the event (False: it was
    skipped and counted in ``ignored``), for folds that copy what was accepted."""
    if _fold(state, payload, (stream, version)):
        return True
    state.ignored += 1
    return False


def _fold(state: LedgerState, payload: Payload, at: tuple[str, int]) -> bool:
    """Apply one payload; False when the table forbids it (the event is skipped)."""
    match payload:
        case AgentForked():
            return _on_fork(state, payload)
        case AgentCompleted():
            agent = _moved(state, payload.agent_id, "done")
            if agent is not None:
                agent.summary = payload.summary
        case AgentFailed():
            agent = _moved(state, payload.agent_id, "failed")
            if agent is not None:
                agent.reason = payload.reason
        case AgentMerged():
            agent = _moved(state, payload.agent_id, "merged")
        case OutcomeRecorded():
            agent = state.agents.get(payload.agent_id)
            if agent is None or agent.status not in FINISHED:
                return False
            agent.outcome = payload.outcome
        case CostAmended():
            key = (payload.supersedes_stream, payload.supersedes_version)
            if key in state.superseded:
                return False
            state.superseded[key] = at
            return True
        case _:
            return True
    return agent is not None


def _on_fork(state: LedgerState, p: AgentForked) -> bool:
    if p.agent_id in state.agents or (p.dna is not None and p.dna in state.by_dna):
        return False
    state.agents[p.agent_id] = AgentState(p.agent_id, dna=p.dna)
    if p.dna is not None:
        state.by_dna[p.dna] = p.agent_id
    return True


def _moved(state: LedgerState, agent_id: str, target: str) -> AgentState | None:
    agent = state.agents.get(agent_id)
    if agent is None or target not in TRANSITIONS[agent.status]:
        return None
    agent.status = target
    return agent


_HANDLED: Final = frozenset(ev for ev in REGISTRY if ev.startswith("agent.")) | {"cost.amended"}
