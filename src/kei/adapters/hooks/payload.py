"""A Claude Code hook payload: one JSON object on stdin, read bounded and typed.

The documented fields kei reads are ``hook_event_name``, ``session_id``, ``cwd``,
``tool_name``, ``tool_use_id``, ``tool_input``, ``tool_response``, ``error`` and
``is_interrupt``; every other field (``transcript_path``, ``permission_mode``,
``agent_id``, fields later versions add) is ignored. A field of the wrong type is
refused, never guessed at: the call then records nothing and says why in hook.log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any, Final

from kei.app.hooks.calls import ClaudeCall
from kei.errors import InputError

MAX_PAYLOAD_BYTES: Final = 8 << 20  # a subagent's answer rides in tool_response
_ID_CHARS: Final = 200  # session and tool-use ids are short; this bounds kei's ids


def read_payload(stream: IO[bytes], limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """At most ``limit`` bytes of ``stream``; more is refused, not cut. A terminal is
    refused too: a person who runs the hook by hand would otherwise wait on it."""
    if stream.isatty():
        raise InputError("no hook payload: stdin is a terminal; pipe one JSON object in")
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"hook payload is over {limit} bytes; nothing recorded")
    return data


def parse_payload(data: bytes) -> ClaudeCall:
    """The call ``data`` describes, or ``InputError`` naming what is wrong with it."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InputError(f"hook payload is not JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise InputError(f"hook payload is a JSON {type(body).__name__}, not an object")
    tool_input = body.get("tool_input")
    if tool_input is not None and not isinstance(tool_input, Mapping):
        raise InputError("hook payload: tool_input is not an object")
    return ClaudeCall(
        event=_required(body, "hook_event_name"),
        session_id=_id(body, "session_id", required=True) or "",
        cwd=_string(body, "cwd"),
        tool_name=_string(body, "tool_name"),
        tool_use_id=_id(body, "tool_use_id"),
        tool_input=tool_input or {},
        tool_response=body.get("tool_response"),
        error=_string(body, "error"),
        is_interrupt=body.get("is_interrupt") is True,
    )


def _required(body: Mapping[str, Any], name: str) -> str:
    value = _string(body, name)
    if not value:
        raise InputError(f"hook payload has no {name}")
    return value


def _id(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = _required(body, name) if required else _string(body, name)
    if value is not None and (len(value) > _ID_CHARS or not value.isprintable()):
        raise InputError(f"hook payload: {name} is not a printable id of at most {_ID_CHARS}")
    return value or None


def _string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"hook payload: {name} is a {type(value).__name__}, not a string")
    return value
