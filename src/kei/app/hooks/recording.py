"""Record a Claude Code hook call in the log, through the agent rules, without read models.

A hook runs on every subagent start and end, so it must be quick: instead of catching
the ``agents`` read model up (SQLAlchemy, a fold of the whole log), each write reads
only the streams it touches, folds them with ``kei.domain.agents.state.apply``, asks
the same ``decide_*`` rules the CLI asks and appends conditionally at the versions it
read, as ``kei.app.agents.AgentService`` does. A writer that loses a race reads and
decides again (``retry_write``); a fork that finds its agent already there, and a
``done`` that finds it done, append nothing, which makes every call idempotent.

A summary the leak matrix blocks is replaced by a fixed sentence, so a subagent whose
answer quoted a credential is still closed (the answer is not lost: it is in the
session transcript).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kei.app.hooks.calls import (
    CLOSE_EVENTS,
    FORK_EVENTS,
    ClaudeCall,
    close_summary,
    finish_of,
    fork_request,
    root_request,
    session_agent_id,
    still_running,
)
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
)
from kei.domain.events import AgentForked, DnaClaimed
from kei.errors import LeakBlockedError

BranchOf = Callable[[], str | None]
WITHHELD = "summary withheld: the leak matrix blocked it"


def agent_stream(agent_id: str) -> str:
    """``agent/<id>``: the stream ``kei.app.agents`` appends an agent's events to (kept
    apart so this module does not import that one's SQLAlchemy)."""
    return f"agent/{agent_id}"


def dna_stream(dna: str) -> str:
    return f"dna/{dna}"


@dataclass(slots=True)
class Recorded:
    """What one call did: events appended, and one note per step for the log."""

    appended: int = 0
    notes: list[str] = field(default_factory=list)


def record(ledger: Ledger, call: ClaudeCall, branch_of: BranchOf, now_s: int) -> Recorded:
    """Append what ``call`` means; calls that mean nothing to kei append nothing."""
    done = Recorded()
    if call.event in FORK_EVENTS and call.about_agent:
        assert call.tool_use_id
        if ledger.store.stream_version(agent_stream(call.tool_use_id)) == 0:
            branch = branch_of()  # git runs only when a fork may be appended
            done.appended += ensure_forked(ledger, root_request(call, branch))
            done.appended += ensure_forked(ledger, fork_request(call, branch, now_s))
        if call.event != "PreToolUse" and not still_running(call):
            done.appended += _finish(ledger, call, done)
    elif call.event in CLOSE_EVENTS:
        root = session_agent_id(call.session_id)
        if ledger.store.stream_version(agent_stream(root)) > 0:
            done.appended += move(ledger, root, "done", close_summary(call))
    return done


def ensure_forked(ledger: Ledger, request: AgentForked) -> int:
    """Fork ``request`` unless its agent exists; the events appended (0 when it did)."""
    return retry_write(
        ledger.retry, lambda: _fork_once(ledger, request), what=f"agent {request.agent_id}"
    )


def _fork_once(ledger: Ledger, request: AgentForked) -> int:
    store = ledger.store
    if store.stream_version(agent_stream(request.agent_id)) > 0:
        return 0
    state = LedgerState()
    parent = request.parent_agent_id
    if parent is not None and store.stream_version(agent_stream(parent)) > 0:
        state.agents[parent] = AgentState(parent)
    if request.dna is not None:
        owner = _dna_owner(ledger, request.dna)
        if owner == request.agent_id:
            return 0  # forked by a racing call between the two reads above
        if owner is not None:
            state.by_dna[request.dna] = owner
    decision = decide_fork(state, request)  # a rule broken: KeiError, nothing appended
    batch = [NewEvent(agent_stream(request.agent_id), decision.payloads[0], 0)]
    if request.dna is not None:
        claim = DnaClaimed(dna=request.dna, agent_id=request.agent_id)
        batch.append(NewEvent(dna_stream(request.dna), claim, 0))
    ledger.append(batch)  # ConcurrencyError: a racing call came first; decide again
    return len(batch)


def _dna_owner(ledger: Ledger, dna: str) -> str | None:
    """The agent that claimed ``dna`` (version 0 of its stream), None when unclaimed."""
    claims = ledger.read_stream(dna_stream(dna))
    claim = claims[0].payload() if claims else None
    if claim is None:
        return None
    return claim.agent_id if isinstance(claim, DnaClaimed) else "?"


def _finish(ledger: Ledger, call: ClaudeCall, done: Recorded) -> int:
    assert call.tool_use_id
    finish = finish_of(call)
    try:
        return move(ledger, call.tool_use_id, finish.status, finish.text)
    except LeakBlockedError as exc:
        done.notes.append(f"{finish.status} text replaced: {exc}")
        return move(ledger, call.tool_use_id, finish.status, WITHHELD)


def move(ledger: Ledger, agent_id: str, status: str, text: str) -> int:
    """running -> ``status`` (done or failed) with ``text``; 0 when already there."""

    def decide(state: LedgerState) -> Decision:
        if status == "failed":
            return decide_fail(state, agent_id, reason=text)
        return decide_done(state, agent_id, summary=text)

    return retry_write(
        ledger.retry, lambda: _move_once(ledger, agent_id, decide), what=f"agent {agent_id}"
    )


def _move_once(ledger: Ledger, agent_id: str, decide: Callable[[LedgerState], Decision]) -> int:
    stream = agent_stream(agent_id)
    history = ledger.read_stream(stream)
    state = LedgerState()
    for event in history:
        apply(state, event)
    decision = decide(state)
    if not isinstance(decision, Accepted):
        return 0
    version = history[-1].version if history else 0
    batch = [NewEvent(stream, p, version + i) for i, p in enumerate(decision.payloads)]
    ledger.append(batch)  # ConcurrencyError: another writer came first; decide again
    return len(batch)
