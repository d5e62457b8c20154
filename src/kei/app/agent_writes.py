"""The agent commands' write side: decide with the domain rules, append race-proof.

A write decides from the streams it appends to, folded with the domain's own fold
(``kei.domain.agents.state.apply``), never from a read model: no projection to catch
up, so no SQLAlchemy, and a hook's ``kei agent fork`` costs a few stream reads.

- ``fork`` reads ``agent/<id>`` (any event there: the id is taken), ``dna/<dna>``
  (its version-0 claim names the owner) and ``agent/<parent>`` (the parent must have
  been forked), then appends ``agent.forked`` at version 0 of ``agent/<id>`` and,
  with a DNA, ``agent.dna.claimed`` at version 0 of ``dna/<dna>``, in one batch.
- Every other command folds ``agent/<id>`` and appends at the version it read.

Appends are conditional, so a racing writer can never land a move the table
forbids; a command that loses the race reads and decides again
(``app/ledger/retrying.py``) and gets the message of coming second. Nothing here
prints; results are returned, refusals raised as ``KeiError``.
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.domain.agents.rules import (
    Accepted,
    AgentState,
    Decision,
    LedgerState,
    apply,
    decide_done,
    decide_fail,
    decide_fork,
    decide_merged,
    decide_outcome,
)
from kei.domain.events import AgentForked, DnaClaimed, Payload


def agent_stream(agent_id: str) -> str:
    return f"agent/{agent_id}"


def dna_stream(dna: str) -> str:
    return f"dna/{dna}"


class Outcome(Struct, frozen=True):
    """What a command did: ``appended`` events (0 for a no-op) and a message for people."""

    message: str
    appended: int


def agent_state(
    ledger: Ledger, agent_id: str, state: LedgerState | None = None, *, after_version: int = 0
) -> LedgerState:
    """``state`` (or a new one) with ``agent/<agent_id>`` folded in (its events after
    ``after_version``: those before are folded in already)."""
    state = LedgerState() if state is None else state
    for event in ledger.read_stream_checked(agent_stream(agent_id)):
        if event.version > after_version:
            apply(state, event)
    return state


def parent_state(ledger: Ledger, parent: str, state: LedgerState) -> None:
    """Fold into ``state`` what a fork needs of its parent: that it was forked. The
    fork that begins its stream says so (one row, checked), so a parent with thousands
    of cost events (a Claude Code session's root) is not read whole for every child;
    a stream that begins otherwise is folded whole. Nothing later in the parent's
    stream bears on a fork: ids and DNAs are taken by the version-0 appends of
    ``agent/<id>`` and ``dna/<dna>``, which ``_fork_state`` reads."""
    for event in ledger.read_stream_checked(agent_stream(parent), upto_version=1):
        apply(state, event)
    if parent not in state.agents:
        agent_state(ledger, parent, state, after_version=1)


def dna_holder(ledger: Ledger, dna: str) -> str | None:
    """The agent whose fork claimed ``dna`` (version 1 of ``dna/<dna>``), None when
    unclaimed; ``"?"`` when that stream holds something else."""
    claims = ledger.read_stream_checked(dna_stream(dna))
    if not claims:
        return None
    claim = claims[0].payload()
    return claim.agent_id if isinstance(claim, DnaClaimed) else "?"


class AgentWriter:
    """The agent lifecycle commands over one ledger (the key it was opened with signs)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def fork(self, request: AgentForked) -> Outcome:
        return retry_write(
            self.ledger.retry, lambda: self._fork(request), what=f"agent {request.agent_id}"
        )

    def _fork(self, request: AgentForked) -> Outcome:
        decide_fork(self._fork_state(request), request)
        batch = [NewEvent(agent_stream(request.agent_id), request, 0)]
        if request.dna is not None:
            claim = DnaClaimed(dna=request.dna, agent_id=request.agent_id)
            batch.append(NewEvent(dna_stream(request.dna), claim, 0))
        self.ledger.append(batch)  # ConcurrencyError: decide again
        return Outcome(f"forked {request.agent_id} -> {request.branch}", len(batch))

    def _fork_state(self, request: AgentForked) -> LedgerState:
        """What ``decide_fork`` needs: is the id taken, who holds the DNA, was the
        parent forked. The streams' version-0 claims decide, as the append does."""
        state = LedgerState()
        store = self.ledger.store
        if store.stream_version(agent_stream(request.agent_id)) > 0:
            state = agent_state(self.ledger, request.agent_id)
            # events there the fold did not take as a fork still take the id
            state.agents.setdefault(request.agent_id, AgentState(request.agent_id))
        if request.dna is not None:
            holder = dna_holder(self.ledger, request.dna)
            if holder == request.agent_id:
                # its own fork landed after the agent stream was read: taken, no collision
                state.agents.setdefault(holder, AgentState(holder))
            elif holder is not None:
                state.by_dna[request.dna] = holder
        parent = request.parent_agent_id
        if parent is not None and parent != request.agent_id:
            parent_state(self.ledger, parent, state)
        return state

    def done(self, agent_id: str, summary: str) -> Outcome:
        return self._move(agent_id, lambda s: decide_done(s, agent_id, summary=summary), "done")

    def fail(self, agent_id: str, reason: str) -> Outcome:
        return self._move(agent_id, lambda s: decide_fail(s, agent_id, reason=reason), "failed")

    def merged(self, agent_id: str) -> Outcome:
        return self._move(agent_id, lambda s: decide_merged(s, agent_id), "merged")

    def outcome(
        self,
        agent_id: str,
        outcome: str,
        escalation_depth: int | None = None,
        stub_count: int | None = None,
    ) -> Outcome:
        def decide(state: LedgerState) -> Decision:
            return decide_outcome(
                state,
                agent_id,
                outcome=outcome,
                escalation_depth=escalation_depth,
                stub_count=stub_count,
            )

        return self._move(agent_id, decide, f"outcome {outcome}")

    def _move(self, agent_id: str, decide: Callable[[LedgerState], Decision], what: str) -> Outcome:
        return retry_write(
            self.ledger.retry,
            lambda: self._move_once(agent_id, decide, what),
            what=f"agent {agent_id}",
        )

    def _move_once(
        self, agent_id: str, decide: Callable[[LedgerState], Decision], what: str
    ) -> Outcome:
        stream = agent_stream(agent_id)
        version = self.ledger.store.stream_version(stream)  # read first: a later event conflicts
        decision = decide(agent_state(self.ledger, agent_id))
        if not isinstance(decision, Accepted):
            return Outcome(decision.message, 0)
        payloads: tuple[Payload, ...] = decision.payloads
        batch = [NewEvent(stream, p, version + i) for i, p in enumerate(payloads)]
        self.ledger.append(batch)  # ConcurrencyError: another writer came first
        return Outcome(f"agent {agent_id} -> {what}", len(batch))
