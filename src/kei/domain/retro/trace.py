"""Trace lines: one JSONL line of a session transcript into trace event values.

Two shapes are read (spec §6.2): Claude Code transcript lines (``type``, ``timestamp``,
``message`` with ``content`` blocks of ``text``, ``tool_use`` and ``tool_result``) and
upstream's legacy flat lines (``ts``, ``tool``, ``file_path``, ``is_error``,
``event_class``, a string ``message``). Rules, upstream's unless marked *kei*:

- Blank lines are ignored. A line that does not start with ``{``, is not JSON, or
  gives a known field the wrong type (``ts`` not an integer, ``is_error`` not a
  boolean, a text field not a string) is a :class:`Skipped` with the reason.
- A line whose ``message.content`` holds ``tool_use`` blocks gives one event per
  block: tool = block name, file = ``input.file_path`` or the line's ``file_path``,
  not an error. Any other line gives one event: the legacy tool and file, and
  ``is_error`` from the first ``tool_result`` block, else the legacy flag, else false.
- kind = ``type``, else (*kei*) the legacy ``kind`` upstream's documented flat shape
  carries but its decoder drops, else ``"other"``. class = legacy ``event_class``,
  else :func:`~kei.domain.retro.classify.classify` over ``message``.
- ``message`` is upstream's: the string message, or the message object as compact
  JSON with sorted keys. *kei*: ``text`` is the readable content (prompt, text blocks,
  tool inputs, tool outputs), and it is what sessions are compared by. Each piece of
  a line's text lands in exactly one of its events, so no word is counted twice.
- Time = legacy ``ts`` (unix seconds), else the RFC 3339 ``timestamp``, in µs.
  *kei*: never the clock; a line without a usable time gives ``ts_us=None``.
- *kei*: ``content_hash`` is SHA-256 over the session, the block index and the line
  as canonical JSON (sorted keys, compact), so a re-read of the same file gives the
  same hashes and whitespace or key order do not matter. Identical lines in one
  session are the same event.
- *kei*: the injection guard (:mod:`kei.domain.memory.guard`) screens ``message`` and
  ``text``; a blocked event is a :class:`Rejected`, for the log to keep as an audit.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from msgspec import Struct

from kei.domain.memory.guard import Blocked, Finding, Verdict, scan_texts
from kei.domain.retro.classify import classify
from kei.errors import InputError

__all__ = [
    "Rejected", "Skipped", "TraceEvent", "TraceParse",
    "parse_line", "parse_rfc3339_us", "parse_trace", "screen",
]  # fmt: skip

_US: Final = 1_000_000
_MAX_TS: Final = (2**63 - 1) // _US  # legacy seconds whose µs still fit an i64
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)
_TEXT_FIELDS: Final = (
    "type", "timestamp", "sessionId", "cwd", "gitBranch", "uuid", "parentUuid",
    "subtype", "toolUseID", "tool", "file_path", "event_class",
)  # fmt: skip


class TraceEvent(Struct, frozen=True):
    """One event of a session's trace, as read; ``content_hash`` is its identity."""

    session: str
    line_no: int
    block: int
    ts_us: int | None
    kind: str
    tool: str | None
    file_path: str | None
    is_error: bool
    event_class: str
    message: str | None
    text: str
    cwd: str | None
    content_hash: str


class Skipped(Struct, frozen=True):
    """A line that gives no event, and why (1-based line number)."""

    line_no: int
    reason: str


class Rejected(Struct, frozen=True):
    """An event the injection guard refused: keep the finding, never the text."""

    event: TraceEvent
    finding: Finding


class TraceParse(Struct, frozen=True):
    """A whole file read: events to append (first copy of each hash), refusals, skips."""

    events: tuple[TraceEvent, ...]
    rejected: tuple[Rejected, ...]
    skipped: tuple[Skipped, ...]


def parse_trace(lines: Iterable[str | bytes], session: str) -> TraceParse:
    """Every line of a transcript, numbered from 1, parsed and screened."""
    events: dict[str, TraceEvent] = {}
    rejected: dict[str, Rejected] = {}
    skipped: list[Skipped] = []
    for line_no, line in enumerate(lines, start=1):
        parsed = parse_line(line, line_no, session)
        if isinstance(parsed, Skipped):
            skipped.append(parsed)
            continue
        for event in parsed:
            verdict = screen(event)
            if isinstance(verdict, Blocked):
                rejected.setdefault(event.content_hash, Rejected(event, verdict.finding))
            else:
                events.setdefault(event.content_hash, event)
    return TraceParse(tuple(events.values()), tuple(rejected.values()), tuple(skipped))


def screen(event: TraceEvent) -> Verdict:
    """The guard over everything of the event that could reach a prompt."""
    return scan_texts((event.message, event.text))


def parse_line(line: str | bytes, line_no: int, session: str) -> tuple[TraceEvent, ...] | Skipped:
    """The events of one line: ``()`` for a blank line, :class:`Skipped` for a bad one."""
    if not session.strip():
        raise InputError("the session id must not be empty", hint="pass --session S")
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Skipped(line_no, f"not UTF-8 at byte {exc.start}")
    stripped = line.strip()
    if not stripped:
        return ()
    if not stripped.startswith("{"):
        return Skipped(line_no, "not a JSON object")
    try:
        obj = json.loads(stripped, parse_constant=_refuse_constant)
        canonical = _canonical(obj)
        canonical.encode("utf-8")  # a lone surrogate escape is refused, as serde_json does
    except (ValueError, UnicodeEncodeError) as exc:
        return Skipped(line_no, f"unparseable JSON ({len(stripped)} chars): {exc}")
    problem = _type_problem(obj)
    if problem is not None:
        return Skipped(line_no, problem)
    return _events(obj, canonical, line_no, session)


def parse_rfc3339_us(text: str) -> int | None:
    """µs since the epoch for an RFC 3339 date-time with an offset; ``None`` otherwise."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, sign, off_h, off_m = match.groups()[6:]
    try:  # a leap second counts as :59, as chrono's timestamp() does
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        return None
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    micros += int((fraction or "0")[:6].ljust(6, "0"))
    if sign is not None:
        micros -= (1 if sign == "+" else -1) * (int(off_h) * 3600 + int(off_m) * 60) * _US
    return micros


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _type_problem(obj: dict[str, Any]) -> str | None:
    for name in _TEXT_FIELDS:
        if obj.get(name) is not None and not isinstance(obj[name], str):
            return f"field {name!r} must be a string"
    ts = obj.get("ts")
    if ts is not None and (type(ts) is not int or abs(ts) > _MAX_TS):
        return "field 'ts' must be an integer of unix seconds"
    if obj.get("is_error") is not None and not isinstance(obj["is_error"], bool):
        return "field 'is_error' must be a boolean"
    return None


def _events(
    obj: dict[str, Any], canonical: str, line_no: int, session: str
) -> tuple[TraceEvent, ...]:
    message = obj.get("message")
    blocks = _blocks(message)
    uses = [b for b in blocks if b.get("type") == "tool_use" and isinstance(b.get("name"), str)]
    prose = _prose(message, [b for b in blocks if all(b is not u for u in uses)])
    rows: list[tuple[str | None, str | None, bool, str]] = []
    for index, use in enumerate(uses):
        path = _input(use).get("file_path")
        path = path if isinstance(path, str) else obj.get("file_path")
        rows.append(
            (use["name"], path, False, _join((prose if index == 0 else "", _block_text(use))))
        )
    if not uses:
        results = [b for b in blocks if b.get("type") == "tool_result"]
        is_error = results[0].get("is_error") is True if results else obj.get("is_error") is True
        rows.append((obj.get("tool"), obj.get("file_path"), is_error, prose))
    kind, text, given_class = _kind(obj), _message_text(message), obj.get("event_class")
    return tuple(
        TraceEvent(
            session=session,
            line_no=line_no,
            block=block,
            ts_us=_time(obj),
            kind=kind,
            tool=tool,
            file_path=path,
            is_error=is_error,
            event_class=_event_class(given_class, kind, tool, text, is_error),
            message=text,
            text=readable,
            cwd=obj.get("cwd"),
            content_hash=_hash(session, block, canonical),
        )
        for block, (tool, path, is_error, readable) in enumerate(rows)
    )


def _event_class(
    given: str | None, kind: str, tool: str | None, message: str | None, is_error: bool
) -> str:
    return given if given is not None else classify(kind, tool, message, is_error)


def _kind(obj: dict[str, Any]) -> str:
    if obj.get("type") is not None:
        return str(obj["type"])
    legacy = obj.get("kind")
    return legacy if isinstance(legacy, str) else "other"


def _time(obj: dict[str, Any]) -> int | None:
    if obj.get("ts") is not None:
        return int(obj["ts"]) * _US
    stamp = obj.get("timestamp")
    return parse_rfc3339_us(stamp) if stamp is not None else None


def _message_text(message: Any) -> str | None:
    if isinstance(message, str):
        return message
    return _canonical(message) if isinstance(message, dict) else None


def _canonical(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _prose(message: Any, others: list[dict[str, Any]]) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return str(message["content"])
    return _join(_block_text(b) for b in others)


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return block["text"] if isinstance(block.get("text"), str) else ""
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return _join(_block_text(b) for b in content)
        return content if isinstance(content, str) else ""
    if kind == "tool_use":
        values = (v for v in _input(block).values() if isinstance(v, str))
        return _join((str(block.get("name", "")), *values))
    return ""


def _input(block: dict[str, Any]) -> dict[str, Any]:
    given = block.get("input")
    return given if isinstance(given, dict) else {}


def _join(parts: Iterable[str]) -> str:
    return "\n".join(p for p in parts if p)


def _hash(session: str, block: int, canonical: str) -> str:
    envelope = json.dumps({"block": block, "session": session, "v": 1}, separators=(",", ":"))
    return hashlib.sha256(f"{envelope}\n{canonical}".encode()).hexdigest()
