"""What one Claude Code hook call means for the agent ledger, decided without I/O.

A :class:`ClaudeCall` is a hook payload already parsed and typed by the driving
adapter (``kei.adapters.hooks.payload``); the functions here turn it into the
requests upstream's hooks made (KeiSeiKit ``hooks/agent-fork-logger.sh`` and
``agent-fork-done.sh``, ``shared/spec/keiseikit-semantics.md`` §0):

- the agent id is the ``tool_use_id``, so every call about one subagent names
  the same agent and a replayed payload finds its work already done;
- DNA ``<subagent>::?::sha256(subagent)[:8]::sha256(prompt)[:8]-<nonce8>``, with
  the nonce taken from ``sha256(tool_use_id)`` instead of random bytes, so it
  too is the same on every replay; ``spec_sha`` is ``sha256(prompt)[:16]``;
- branch ``agent/<subagent>-<ts>`` when the tool ran with ``isolation: worktree``,
  else ``inline-<subagent>-<ts>``; the parent branch is the current git branch of
  the payload's ``cwd`` (upstream's ``--parent``), none outside a repository;
- kei adds one thing upstream lacked: every subagent's parent agent is the
  session's own root agent, ``claude-session-<session_id>``, forked on first use,
  so ``kei agent tree claude-session-<id>`` shows the session's whole tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from msgspec import Struct, field

from kei.domain.events import AgentForked

AGENT_TOOLS: Final = frozenset({"Task", "Agent"})  # Claude Code renamed Task to Agent
FORK_EVENTS: Final = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure"})
CLOSE_EVENTS: Final = frozenset({"Stop", "SessionEnd"})
FAILED_STATUSES: Final = frozenset({"error", "failed", "failure", "cancelled", "interrupted"})
LAUNCHED_STATUSES: Final = frozenset({"async_launched", "launched", "running", "started"})
DEFAULT_SUBAGENT: Final = "general-purpose"  # Claude Code's when tool_input names none
SUMMARY_CHARS: Final = 4000  # a subagent's answer, kept as the done summary, cut here
_ROLE_CHARS: Final = 64


class ClaudeCall(Struct, frozen=True):
    """One hook payload's fields kei reads; every other field is ignored."""

    event: str
    session_id: str
    cwd: str | None = None
    tool_name: str | None = None
    tool_use_id: str | None = None
    tool_input: Mapping[str, Any] = field(default_factory=dict)
    tool_response: Any = None
    error: str | None = None
    is_interrupt: bool = False

    @property
    def about_agent(self) -> bool:
        """A call on the subagent tool with an id to name the agent by."""
        return self.tool_name in AGENT_TOOLS and bool(self.tool_use_id)


class Finish(Struct, frozen=True):
    """How a subagent ended: ``done`` with a summary or ``failed`` with a reason."""

    status: str
    text: str


def session_agent_id(session_id: str) -> str:
    return f"claude-session-{session_id}"


def root_request(call: ClaudeCall, branch: str | None) -> AgentForked:
    """The session's root agent, on the git branch the session works on."""
    return AgentForked(
        agent_id=session_agent_id(call.session_id),
        branch=branch or "claude-session",
        creator="claude-code",
    )


def fork_request(call: ClaudeCall, branch: str | None, now_s: int) -> AgentForked:
    """The subagent a Task/Agent tool call starts (upstream's fork-logger rules)."""
    assert call.tool_use_id  # callers check ``about_agent`` first
    subagent = _text(call.tool_input.get("subagent_type")) or DEFAULT_SUBAGENT
    prompt = _text(call.tool_input.get("prompt")) or ""
    role = _role(subagent)
    isolated = call.tool_input.get("isolation") == "worktree"
    return AgentForked(
        agent_id=call.tool_use_id,
        branch=f"agent/{role}-{now_s}" if isolated else f"inline-{role}-{now_s}",
        parent_agent_id=session_agent_id(call.session_id),
        parent_branch=branch,
        spec_sha=_sha(prompt)[:16],
        dna=f"{role}::?::{_sha(subagent)[:8]}::{_sha(prompt)[:8]}-{_sha(call.tool_use_id)[:8]}",
    )


def still_running(call: ClaudeCall) -> bool:
    """A PostToolUse that only launched the subagent: ``run_in_background`` (the tool
    answers at once, with an output file) or a response status that says so. Its end
    reaches no hook with this ``tool_use_id``, so the agent stays running in kei rather
    than being called done before it did anything."""
    if call.event != "PostToolUse":
        return False
    response = call.tool_response
    status = response.get("status") if isinstance(response, Mapping) else None
    launched = isinstance(status, str) and status.lower() in LAUNCHED_STATUSES
    return launched or call.tool_input.get("run_in_background") is True


def finish_of(call: ClaudeCall) -> Finish:
    """PostToolUseFailure, or a response whose status says so, is a failure; any other
    PostToolUse is done, summarised by the subagent's answer (upstream's words when
    it has none)."""
    if call.event == "PostToolUseFailure":
        reason = (call.error or "").strip() or "the tool call failed"
        return Finish("failed", _cut(reason + (" (interrupted)" if call.is_interrupt else "")))
    response = call.tool_response
    status = response.get("status") if isinstance(response, Mapping) else None
    is_error = isinstance(response, Mapping) and response.get("is_error") is True
    text = _answer(response) or f"auto-closed at PostToolUse:{call.tool_name}"
    if is_error or (isinstance(status, str) and status.lower() in FAILED_STATUSES):
        return Finish("failed", _cut(text))
    return Finish("done", _cut(text))


def close_summary(call: ClaudeCall) -> str:
    return f"closed at {call.event}"


def _answer(response: Any) -> str:
    """The text of a tool response: a string, or the text blocks of its ``content``."""
    if isinstance(response, str):
        return response.strip()
    if not isinstance(response, Mapping):
        return ""
    content = response.get("content")
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return ""
    parts = [b.get("text") for b in content if isinstance(b, Mapping)]
    return "\n".join(p for p in parts if isinstance(p, str)).strip()


def _role(subagent: str) -> str:
    """The subagent type as a DNA role and branch part: no ``::`` (the DNA separator),
    no whitespace, at most 64 characters."""
    cleaned = "".join(
        "-" if c == ":" or not c.isprintable() or c.isspace() else c for c in subagent
    )
    return cleaned[:_ROLE_CHARS] or DEFAULT_SUBAGENT


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
