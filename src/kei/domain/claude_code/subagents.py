"""What a Claude Code session transcript says about its sub-agents, read without I/O.

A sub-agent starts with a ``tool_use`` block of the ``Task`` tool (``Agent`` since Claude
Code renamed it) in an assistant line of the session's main transcript; the block's
``id`` is the ``tool_use_id`` kei's hook names the agent by. It ends with the user line
that carries the ``tool_result`` block for that id: ``is_error`` true when the call
failed (its ``content`` is the reason), else the sub-agent's answer, with Claude Code's
structured ``toolUseResult`` beside it (``status``, ``agentId``, ``content``; a
``run_in_background`` call answers ``async_launched`` at once and ends later).

- :class:`TaskCall`: a Task/Agent call, read from assistant lines that name the tool
  (one substring test per line; the blocks are decoded only then).
- :class:`TaskResult`: the result of a call the session made (the caller passes the ids
  seen so far), with the ``agentId`` it names, if any.
- :class:`Link`: a tool result that names an ``agentId`` for a call not seen as a Task
  (``toolUseResult.agentId``, or ``agentId: …`` in the result text): the pair still
  links the sub-agent's own file to its call.

A line holding more or less than one ``tool_use_id`` is neither (Claude Code writes one
tool result per line); progress lines that quote a sub-agent's tool results are not
``user`` lines and are never read as results.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Final

import msgspec
from msgspec import Struct

TASK_TOOLS: Final = frozenset({"Task", "Agent"})  # as app/hooks/calls.py's AGENT_TOOLS
MAX_ID_CHARS: Final = 256
MAX_TEXT_CHARS: Final = 16_384  # of a result's text kept (the hook keeps 4,000)
_TOOL_USE_ID: Final = re.compile(rb'"tool_use_id"\s*:\s*"([^"\\]{1,256})"')
_AGENT_TEXT: Final = re.compile(rb"agentId: ?([A-Za-z0-9_.@-]{1,256})")
_TASK: Final = b'"Task"'  # TASK_TOOLS as JSON strings, for one substring test each
_AGENT: Final = b'"Agent"'


class TaskCall(Struct, frozen=True):
    """A Task/Agent tool call: kei's agent id, and whether it runs in the background."""

    tool_use_id: str
    background: bool = False
    tool: str = "Task"  # or "Agent"


class TaskResult(Struct, frozen=True):
    """How the Task call ``tool_use_id`` ended: ``is_error`` (a failure, ``text`` its
    reason) or an answer (``text``) with Claude Code's ``status`` for it."""

    tool_use_id: str
    is_error: bool
    text: str = ""
    status: str | None = None
    agent: str | None = None  # the sub-agent's ``agentId``, when the result names it


class Link(Struct, frozen=True):
    """A Task tool result: the sub-agent ``agent`` ran as the tool call ``tool_use_id``."""

    agent: str
    tool_use_id: str


def task_calls(raw: bytes) -> tuple[TaskCall, ...]:
    """The Task/Agent calls in an assistant line (none unless it names the tool)."""
    if not names_a_task_tool(raw):
        return ()
    calls = []
    for block in _blocks(_decode(raw)):
        if block.get("type") == "tool_use" and block.get("name") in TASK_TOOLS:
            given = block.get("input")
            background = isinstance(given, dict) and given.get("run_in_background") is True
            if who := clean_id(block.get("id")):
                calls.append(TaskCall(who, background, block["name"]))
    return tuple(calls)


def names_a_task_tool(raw: bytes) -> bool:
    """Whether a line may hold a Task/Agent call (a cheap test before decoding it)."""
    return _TASK in raw or _AGENT in raw


def task_result(raw: bytes, tasks: Collection[str]) -> TaskResult | Link | None:
    """The result in a user line of a session's main transcript: a :class:`TaskResult`
    when it answers one of ``tasks``, a :class:`Link` when it names an ``agentId``."""
    first = _TOOL_USE_ID.search(raw)  # most results answer another tool: one search says so
    if first is None or (first[1].decode("utf-8", "replace") not in tasks
                         and b"agentId" not in raw):  # fmt: skip
        return None
    ids = set(_TOOL_USE_ID.findall(raw))
    if len(ids) != 1:
        return None
    tool_use_id = clean_id(ids.pop().decode("utf-8", "replace"))
    if tool_use_id is None:
        return None
    answers = tool_use_id in tasks
    if not answers and b"agentId" not in raw:
        return None
    line = _decode(raw)
    found = line.get("toolUseResult")
    response: dict[str, Any] = found if isinstance(found, dict) else {}
    agent = clean_id(response.get("agentId"))
    if agent is None:
        named = {m.decode() for m in _AGENT_TEXT.findall(raw)}
        agent = named.pop() if len(named) == 1 else None
    if not answers:
        return Link(agent, tool_use_id) if agent else None
    block = next((b for b in _blocks(line) if b.get("type") == "tool_result"
                  and b.get("tool_use_id") == tool_use_id), None)  # fmt: skip
    if block is None:
        return None
    status = response.get("status")
    answer = _text(response.get("content")) or _text(block.get("content"))
    return TaskResult(tool_use_id, block.get("is_error") is True, answer[:MAX_TEXT_CHARS],
                      status if isinstance(status, str) else None, agent)  # fmt: skip


def clean_id(value: object) -> str | None:
    """An identifier from the transcript, or None when it is not a plain short string."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        return None
    return value if value.isprintable() else None


def _decode(raw: bytes) -> dict[str, Any]:
    """The line as a JSON object ({} when it is not one)."""
    try:
        line = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    return line if isinstance(line, dict) else {}


def _blocks(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The object blocks of the line's ``message.content``."""
    message = line.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _text(content: object) -> str:
    """A result's text: a string, or the text of its ``text`` blocks, joined."""
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return ""
    parts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(p for p in parts if isinstance(p, str)).strip()
