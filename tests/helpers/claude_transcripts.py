"""Claude Code transcript lines in the real format, built in the tests (no captured files).

The shapes follow what Claude Code writes to ``~/.claude/projects/<project>/<session>.jsonl``
(and ``<session>/subagents/agent-<agentId>.jsonl``): assistant lines carry
``message.usage`` with cache writes split into 5-minute and 1-hour tiers and the
``service_tier``; user lines carry tool results, and a Task tool result names the
sub-agent it ran (``toolUseResult.agentId``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CWD = "/home/dev/proj"


def assistant(
    session: str,
    msg_id: str,
    request_id: str | None,
    at: str,
    *,
    model: str = "claude-sonnet-4-6",
    tokens_in: int = 10,
    tokens_out: int = 100,
    cache_write: int = 0,
    cache_read: int = 0,
    cache_1h: int = 0,
    sidechain: bool = False,
    agent_id: str | None = None,
    cwd: str = CWD,
    uuid: str | None = None,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.0.61",
        "gitBranch": "main",
        "type": "assistant",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "done"}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": tokens_in,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": cache_write - cache_1h,
                    "ephemeral_1h_input_tokens": cache_1h,
                },
                "output_tokens": tokens_out,
                "service_tier": "standard",
            },
        },
        "uuid": uuid or f"u-{msg_id}-{request_id}",
        "timestamp": at,
    }
    if request_id is not None:
        line["requestId"] = request_id
    if agent_id is not None:
        line["agentId"] = agent_id
    return line


def user(session: str, text: str, at: str) -> dict[str, Any]:
    return {"parentUuid": None, "isSidechain": False, "cwd": CWD, "sessionId": session,
            "type": "user", "message": {"role": "user", "content": text},
            "uuid": f"user-{at}", "timestamp": at}  # fmt: skip


def task_call(
    session: str,
    msg_id: str,
    tool_use_id: str,
    at: str,
    *,
    tool: str = "Task",
    background: bool = False,
) -> dict[str, Any]:
    """An assistant line (billed, as every streamed block of a message is) whose one
    content block calls the Task tool (``Agent`` in newer Claude Code)."""
    line = assistant(session, msg_id, f"req-{msg_id}", at)
    given: dict[str, Any] = {"subagent_type": "Explore", "description": "look",
                             "prompt": "look around"}  # fmt: skip
    if background:
        given["run_in_background"] = True
    line["message"]["content"] = [
        {"type": "tool_use", "id": tool_use_id, "name": tool, "input": given}
    ]
    return line


def task_result(
    session: str,
    tool_use_id: str,
    agent_id: str,
    at: str,
    *,
    answer: str = "all done",
    status: str = "completed",
) -> dict[str, Any]:
    """The user line holding a Task call's result, naming the sub-agent that ran it."""
    return {
        "parentUuid": None, "isSidechain": False, "cwd": CWD, "sessionId": session,
        "type": "user",
        "message": {"role": "user", "content": [{
            "tool_use_id": tool_use_id, "type": "tool_result",
            "content": [{"type": "text", "text": f"{answer}\nagentId: {agent_id}"}],
        }]},
        "toolUseResult": {"status": status, "agentId": agent_id, "totalTokens": 5,
                          "content": [{"type": "text", "text": answer}]},
        "uuid": f"result-{tool_use_id}", "timestamp": at,
    }  # fmt: skip


def task_error(session: str, tool_use_id: str, at: str, reason: str) -> dict[str, Any]:
    """The user line holding a Task call that failed: ``is_error``, the reason as text."""
    return {
        "parentUuid": None, "isSidechain": False, "cwd": CWD, "sessionId": session,
        "type": "user",
        "message": {"role": "user", "content": [{
            "type": "tool_result", "content": f"<tool_use_error>{reason}</tool_use_error>",
            "is_error": True, "tool_use_id": tool_use_id,
        }]},
        "toolUseResult": f"Error: {reason}",
        "uuid": f"error-{tool_use_id}", "timestamp": at,
    }  # fmt: skip


def write(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    """Write JSON lines (a ``str`` item is written as it is: a malformed line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path
