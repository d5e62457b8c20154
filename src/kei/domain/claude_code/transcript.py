"""The billed messages of a Claude Code session transcript, counted as ccusage counts them.

Claude Code appends one JSON object per line to ``<projects>/<project>/<session>.jsonl``
and, for each sub-agent, to ``<session>/subagents/agent-<agentId>.jsonl``. An assistant
line's ``message.usage`` is what the API billed for that request, in Anthropic's terms:
``input_tokens`` leaves the cache out, ``cache_creation_input_tokens`` counts cache writes
(split under ``cache_creation`` into 5-minute and 1-hour writes), ``cache_read_input_tokens``
cache reads. :func:`token_usage` turns them into kei's ``TokenUsage`` (input counting the cache).

What counts, and what does not (ccusage's ``data-loader.ts`` rules, unless marked *kei*):

- One request, one count. Streaming writes a message several times and a resumed session
  copies earlier lines, so a message counts once per ``message.id`` + ``requestId``
  (ccusage's ``createUniqueHash``, the :attr:`Billed.key`). *kei*: a line lacking either
  is keyed by its ``uuid`` (ccusage counts it each time it is read; a re-run must
  recognise it), and one with neither is reported, not counted.
- Lines without ``message.usage`` (user lines, summaries, snapshots) are not billed, nor
  is Claude Code's placeholder model ``<synthetic>``. *kei*: nor a usage of all zeros
  (ccusage counts it at $0: the totals agree).
- ``usage.speed`` (``"fast"`` in fast mode; ccusage multiplies the cost by its table's
  fast factor) is kept on :class:`Billed`'s usage: *kei* prices the message at its
  entry's fast rates (``kei.app.cost_writes``).
- *kei*, hostile input: a line that is not a JSON object, or whose usage has a field of
  the wrong type, a negative or implausible count, a ``speed`` that is not a short
  word, or no valid ``timestamp``, is
  :class:`Malformed` (the retro parser's ``Skipped``: a line number and a reason):
  reported, never fatal. The line length and
  file size bounds are the reader's (``kei.limits``).

Sub-agents: a sub-agent's lines say ``isSidechain`` and carry its ``agentId``; the parent
transcript's tool result for the Task call that started it names that ``agentId``
(``toolUseResult.agentId``, or ``agentId: …`` in the result text) beside the call's
``tool_use_id``, which is the agent id kei's hook records. :class:`Link` is that pair.
A billed line's Task calls (:attr:`Billed.calls`) and the result that ends each one
(:class:`TaskResult`) say when a sub-agent ended (``subagents.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Final

import msgspec
from msgspec import Struct

from kei.domain.catalog.pricing import MAX_SPEED_CHARS
from kei.domain.catalog.usage import anthropic_counts
from kei.domain.claude_code.subagents import (
    Link,
    TaskCall,
    TaskResult,
    names_a_task_tool,
    task_calls,
    task_result,
)
from kei.domain.claude_code.subagents import clean_id as _id
from kei.domain.events import TokenUsage
from kei.domain.retro.trace import Skipped as Malformed
from kei.domain.retro.trace import parse_rfc3339_us

SYNTHETIC: Final = "<synthetic>"
MAX_COUNT: Final = 10**12  # tokens in one message past any context window: not a count
MAX_PATH_CHARS: Final = 4_096
_US: Final = 1_000_000


class CacheCreation(Struct, frozen=True):
    """The cache writes split by how long they live (priced apart)."""

    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class AnthropicUsage(Struct, frozen=True):
    """One message's ``usage`` as the API reported it (input excludes the cache),
    decoded as it stands: a count that is missing is 0, one that is null is malformed."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation | None = None
    service_tier: str | None = None
    speed: str | None = None  # "fast" in fast mode (priced at the entry's fast rates)

    @property
    def counts(self) -> tuple[int | None, ...]:
        tiers = self.cache_creation or CacheCreation()
        return (self.input_tokens, self.output_tokens, self.cache_creation_input_tokens,
                self.cache_read_input_tokens, tiers.ephemeral_5m_input_tokens,
                tiers.ephemeral_1h_input_tokens)  # fmt: skip


class _Message(Struct):
    id: str | None = None
    model: str | None = None
    usage: AnthropicUsage | None = None


class _Line(Struct):
    """The fields of a transcript line kei reads; msgspec skips every other one unread."""

    type: str | None = None
    timestamp: str | None = None
    sessionId: str | None = None  # noqa: N815 (Claude Code's names)
    cwd: str | None = None
    isSidechain: bool | None = None  # noqa: N815
    agentId: str | None = None  # noqa: N815
    requestId: str | None = None  # noqa: N815
    uuid: str | None = None
    message: _Message | None = None


_DECODER: Final = msgspec.json.Decoder(_Line)


class Billed(Struct, frozen=True):
    """One billed assistant message: its dedupe key, where and when, and its usage."""

    key: str
    line_no: int
    session: str
    model: str
    at_us: int
    usage: AnthropicUsage
    sidechain: bool = False
    agent: str | None = None  # the sub-agent's ``agentId`` (not yet kei's agent id)
    cwd: str | None = None
    calls: tuple[TaskCall, ...] = ()  # the Task/Agent calls this line makes


Parsed = Billed | Link | TaskResult | Malformed | None
__all__ = ["AnthropicUsage", "Billed", "CacheCreation", "Link", "Malformed", "Parsed",
           "TaskCall", "TaskResult", "parse_line", "rfc3339_us", "token_usage"]  # fmt: skip


def token_usage(u: AnthropicUsage) -> TokenUsage:
    """Anthropic's usage fields as kei's ``TokenUsage``, by kei's one converter
    (``domain/catalog/usage.py``: input counts the cached tokens, 1-hour writes apart),
    fed the typed counts (a count that is not an integer >= 0 is unknown, as there)."""
    tiers = u.cache_creation
    write = _count(u.cache_creation_input_tokens)
    write_1h = None if tiers is None else _count(tiers.ephemeral_1h_input_tokens)
    if write is None and tiers is not None:  # the total unknown: the split's sum, as there
        parts = (_count(tiers.ephemeral_5m_input_tokens), write_1h)
        write = None if None in parts else sum(p or 0 for p in parts)
    return anthropic_counts(_count(u.input_tokens), _count(u.output_tokens), write,
                            _count(u.cache_read_input_tokens), write_1h)  # fmt: skip


def _count(n: int | None) -> int | None:
    return n if n.__class__ is int and n >= 0 else None


def parse_line(
    raw: bytes,
    line_no: int,
    session: str,
    agent: str | None = None,
    tasks: Collection[str] = frozenset(),
) -> Parsed:
    """What line ``line_no`` says: a billed message, a sub-agent link, the result of one
    of ``tasks`` (the Task calls the session made before this line), a malformed line or
    nothing. ``session`` and ``agent`` are the file's, used when the line names none;
    ``agent`` is given for a sub-agent's file (its lines start no sub-agents)."""
    try:
        line = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        return _unexpected(raw, line_no, exc)
    except msgspec.DecodeError:
        return None if not raw.strip() else Malformed(line_no, "not a JSON object")
    message = line.message
    if message is None or message.usage is None:
        if agent is None and line.type == "user" and b"tool_use_id" in raw:
            # a result answers a Task call made before it, or names the agentId
            return task_result(raw, tasks) if tasks or b"agentId" in raw else None
        return None
    found = _billed(line, message, message.usage, line_no, session, agent)
    if agent is None and isinstance(found, Billed) and names_a_task_tool(raw):
        return msgspec.structs.replace(found, calls=task_calls(raw))
    return found


def _unexpected(raw: bytes, line_no: int, exc: msgspec.ValidationError) -> Malformed | None:
    """A line whose fields kei reads have other types: malformed when it looks billed
    (an object whose ``message`` holds ``usage``), else just not a line kei reads."""
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return Malformed(line_no, "not a JSON object")
    if not isinstance(obj, dict):
        return Malformed(line_no, "not a JSON object")
    message = obj.get("message")
    if isinstance(message, dict) and "usage" in message:
        return Malformed(line_no, f"unexpected value: {exc}")
    return None


def _billed(
    line: _Line,
    message: _Message,
    usage: AnthropicUsage,
    line_no: int,
    session: str,
    agent: str | None,
) -> Billed | Malformed | None:
    model = message.model or ""
    if model == SYNTHETIC:
        return None
    counts = usage.counts
    if any(c is not None and not 0 <= c <= MAX_COUNT for c in counts):
        return Malformed(line_no, "a token count is negative or implausibly large")
    if not any(counts[:4]):
        return None
    if usage.speed is not None and not _is_speed(usage.speed):
        return Malformed(line_no, "usage.speed is not a speed")
    at_us = rfc3339_us(line.timestamp) if line.timestamp is not None else None
    if at_us is None or at_us < 0:
        return Malformed(line_no, "billed message without a valid timestamp")
    if _id(model) is None:
        return Malformed(line_no, "billed message without a model name")
    key = _key(line, message)
    if key is None:
        return Malformed(line_no, "billed message without message.id, requestId or uuid")
    named = _id(line.sessionId) or _id(session)
    if named is None:
        return Malformed(line_no, "billed message without a session id")
    return Billed(
        key=key, line_no=line_no, session=named, model=model,
        at_us=at_us, usage=usage, sidechain=bool(line.isSidechain),
        agent=_id(line.agentId) or agent, cwd=_path(line.cwd),
    )  # fmt: skip


def _is_speed(value: str) -> bool:
    """A speed ``recorded_speed`` takes: a short printable word."""
    return _id(value) is not None and len(value) <= MAX_SPEED_CHARS


def _key(line: _Line, message: _Message) -> str | None:
    """ccusage's ``message.id:requestId``; else the line's uuid (see the docstring)."""
    if message.id and line.requestId:
        key = f"{message.id}:{line.requestId}"
    elif line.uuid:
        key = f"uuid:{line.uuid}"
    else:
        return None
    return _id(key)


def _path(value: str | None) -> str | None:
    ok = value and len(value) <= MAX_PATH_CHARS and value.isprintable()
    return value if ok else None


def rfc3339_us(text: str) -> int | None:
    """µs since the epoch of Claude Code's ``2025-08-01T12:34:56.789Z``, quickly (the
    date is memoised); any other RFC 3339 form through the retro parser's rule."""
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and text[19] in ".Z":
        day = _day_us(text[:10])
        clock = text[11:19]
        fraction = text[20:-1] if text[19] == "." else ""
        if (day is not None and clock[2] == ":" and clock[5] == ":"
                and (clock[:2] + clock[3:5] + clock[6:] + fraction).isdigit()):  # fmt: skip
            h, m, s = int(clock[:2]), int(clock[3:5]), int(clock[6:])
            if h < 24 and m < 60 and s < 61:
                micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
                return day + ((h * 60 + m) * 60 + min(s, 59)) * _US + micros
    return parse_rfc3339_us(text)


@functools.lru_cache(maxsize=4096)
def _day_us(text: str) -> int | None:
    if not (text[:4] + text[5:7] + text[8:10]).isdigit() or text[4] + text[7] != "--":
        return None
    try:
        day = datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), tzinfo=UTC)
    except ValueError:
        return None
    return int(day.timestamp()) * _US
