"""Closing the sub-agents a Claude Code transcript shows ended, by the hook's own rules.

Without the hook's PostToolUse a sub-agent the import forked would stay ``running`` for
ever, though its session's transcript says when it ended: the user line carrying the
``tool_result`` of its Task call (``domain/claude_code/subagents.py``). For each such
result the import builds the call the hook would have received (PostToolUseFailure
when ``is_error``, its text the reason; else PostToolUse with Claude Code's status and
the answer as the tool response) and hands it to ``hooks.recording.finish``: the same
``finish_of`` and ``still_running`` reading, the same agent rules and leak handling.

Exactly once, and never twice: an agent the log already shows closed (by the hook, a
``kei agent`` command or an earlier import: ``Seen``) is not read again; one closed
meanwhile is left as it is by the rules (a second ``done`` is a no-op, ``failed`` then
``done`` is refused and skipped here). A background call's result only says it was
launched, so that agent stays running, as the hook leaves it. Only agents kei knows are
closed (their stream exists: the hook or this import forked them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from kei.app.agent_writes import agent_stream
from kei.app.hooks.calls import ClaudeCall, still_running
from kei.app.hooks.recording import finish
from kei.app.importers.claude_report import ClaudeImportReport
from kei.app.importers.claude_seen import Seen
from kei.app.ledger.ledger import Ledger
from kei.domain.claude_code.subagents import TaskCall, TaskResult
from kei.errors import KeiError, TransitionError


def hook_call(
    session: str, result: TaskResult, call: TaskCall | None, cwd: str | None
) -> ClaudeCall:
    """The hook payload that ``result`` stands for (see the module docstring)."""
    background = call is not None and call.background
    return ClaudeCall(
        event="PostToolUseFailure" if result.is_error else "PostToolUse",
        session_id=session,
        cwd=cwd,
        tool_name=call.tool if call is not None else "Task",
        tool_use_id=result.tool_use_id,
        tool_input={"run_in_background": True} if background else {},
        tool_response=None
        if result.is_error
        else {"status": result.status, "content": result.text},
        error=result.text if result.is_error else None,
    )


def close_ended(
    ledger: Ledger,
    session: str,
    ended: Iterable[TaskResult],
    calls: Mapping[str, TaskCall],
    *,
    seen: Seen,
    report: ClaudeImportReport,
    cwd: str | None = None,
    costed: Collection[str] = (),
) -> None:
    """Close each sub-agent ``ended`` names, once (see the module docstring).
    ``costed``: the agents this session's costs went to (a dry run counts those it
    would have forked)."""
    results = list(ended)
    done = seen.closed(r.tool_use_id for r in results)
    closed: list[str] = []
    for result in results:
        agent = result.tool_use_id
        call = hook_call(session, result, calls.get(agent), cwd)
        if agent in done or still_running(call):
            continue
        known = ledger.store.stream_version(agent_stream(agent)) > 0
        if report.dry_run:
            report.agents_closed += known or agent in costed
            continue
        if not known:
            continue
        try:
            report.agents_closed += finish(ledger, call).appended > 0
        except TransitionError:  # closed the other way since the log was read
            pass
        except KeiError as exc:  # e.g. a reason the log refuses: the others go on
            report.refused.append([agent, str(exc)])
            continue
        closed.append(agent)
    seen.mark_closed(closed)
