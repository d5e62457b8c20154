"""Record a Claude Code hook call in the log, through the agent rules, without read models.

A hook runs on every subagent start and end, so it must be quick: it writes through
``kei.app.agent_writes.AgentWriter``, the same write path as ``kei agent``, which reads
only the streams it touches (each row checked first), asks the ``decide_*`` rules and
appends conditionally; a writer that loses a race reads and decides again. A fork
that finds its agent already there, and a ``done`` that finds it done, append
nothing, which makes every call idempotent.

A summary the leak matrix blocks is replaced by a fixed sentence, so a subagent whose
answer quoted a credential is still closed (the answer is not lost: it is in the
session transcript).
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct, field

from kei.app.agent_writes import AgentWriter, agent_stream, dna_stream
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
from kei.app.ledger.ledger import Ledger
from kei.domain.events import AgentForked
from kei.errors import DuplicateAgentError, LeakBlockedError

__all__ = ["WITHHELD", "Recorded", "agent_stream", "dna_stream", "ensure_forked", "finish", "move",
           "record"]  # fmt: skip

BranchOf = Callable[[], str | None]
WITHHELD = "summary withheld: the leak matrix blocked it"


class Recorded(Struct):
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
        if call.event != "PreToolUse":
            ended = finish(ledger, call)
            done.appended += ended.appended
            done.notes += ended.notes
    elif call.event in CLOSE_EVENTS:
        root = session_agent_id(call.session_id)
        if ledger.store.stream_version(agent_stream(root)) > 0:
            done.appended += move(ledger, root, "done", close_summary(call))
    return done


def ensure_forked(ledger: Ledger, request: AgentForked) -> int:
    """Fork ``request`` unless its agent exists; the events appended (0 when it did)."""
    try:
        return AgentWriter(ledger).fork(request).appended
    except DuplicateAgentError:
        return 0


def finish(ledger: Ledger, call: ClaudeCall) -> Recorded:
    """A PostToolUse or PostToolUseFailure of a subagent kei knows: done or failed as
    ``finish_of`` reads it, unless the call only launched it (``still_running``);
    nothing when it is already closed that way. ``kei import claude-code`` closes the
    subagents a transcript shows ended through here too."""
    done = Recorded()
    if still_running(call):
        return done
    assert call.tool_use_id
    ended = finish_of(call)
    try:
        done.appended += move(ledger, call.tool_use_id, ended.status, ended.text)
    except LeakBlockedError as exc:
        done.notes.append(f"{ended.status} text replaced: {exc}")
        done.appended += move(ledger, call.tool_use_id, ended.status, WITHHELD)
    return done


def move(ledger: Ledger, agent_id: str, status: str, text: str) -> int:
    """running -> ``status`` (done or failed) with ``text``; 0 when already there."""
    writer = AgentWriter(ledger)
    moved = writer.fail(agent_id, text) if status == "failed" else writer.done(agent_id, text)
    return moved.appended
