"""Each provider's usage fields, converted on the way in to ``TokenUsage``'s convention.

``TokenUsage`` follows OpenTelemetry GenAI: ``input_tokens`` includes cached tokens
(reads and writes), ``output_tokens`` includes reasoning. Providers differ:

- Anthropic (Messages API, and Claude Code transcripts' ``message.usage``) reports
  ``input_tokens`` *apart from* ``cache_creation_input_tokens`` and
  ``cache_read_input_tokens``; ``cache_creation.ephemeral_5m_input_tokens`` and
  ``ephemeral_1h_input_tokens`` split the writes by lifetime. Its ``output_tokens``
  include extended thinking, which it does not count apart.
- OpenAI's Chat Completions ``prompt_tokens`` (and the Responses API's ``input_tokens``)
  already *include* ``prompt_tokens_details.cached_tokens``
  (``input_tokens_details.cached_tokens``); ``completion_tokens`` (``output_tokens``)
  include ``completion_tokens_details.reasoning_tokens``
  (``output_tokens_details.reasoning_tokens``). OpenAI bills no cache writes.

Pure and lenient: a field that is missing or not a non-negative integer is unknown
(None), never 0 and never an error, since the usage comes from a remote answer.

Example::

    >>> from_anthropic({"input_tokens": 40, "cache_read_input_tokens": 80,
    ...                 "cache_creation_input_tokens": 0, "output_tokens": 9}).input_tokens
    120
"""

from __future__ import annotations

from collections.abc import Mapping

from kei.domain.events.payload import TokenUsage

__all__ = ["anthropic_counts", "from_anthropic", "from_openai"]


def from_anthropic(usage: Mapping[str, object]) -> TokenUsage:
    """``TokenUsage`` from an Anthropic ``usage`` object (the module rules)."""
    fresh = _count(usage, "input_tokens")
    write = _count(usage, "cache_creation_input_tokens")
    read = _count(usage, "cache_read_input_tokens")
    split = usage.get("cache_creation")
    write_1h = _count(split, "ephemeral_1h_input_tokens") if isinstance(split, Mapping) else None
    if write is None and isinstance(split, Mapping):
        parts = (_count(split, "ephemeral_5m_input_tokens"), write_1h)
        write = None if None in parts else sum(p or 0 for p in parts)
    return anthropic_counts(fresh, _count(usage, "output_tokens"), write, read, write_1h)


def anthropic_counts(
    fresh: int | None,
    output: int | None,
    write: int | None,
    read: int | None,
    write_1h: int | None,
) -> TokenUsage:
    """``TokenUsage`` from Anthropic's counts already read (None: unknown), for a
    caller that decoded them typed (the Claude Code importer): input adds the cache."""
    total = None if fresh is None else fresh + (write or 0) + (read or 0)
    return TokenUsage(
        input_tokens=total,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
    )


def from_openai(usage: Mapping[str, object]) -> TokenUsage:
    """``TokenUsage`` from an OpenAI ``usage`` object, Chat Completions or Responses."""
    chat = "prompt_tokens" in usage or "completion_tokens" in usage
    names = (("prompt_tokens", "completion_tokens", "prompt_tokens_details",
              "completion_tokens_details") if chat else
             ("input_tokens", "output_tokens", "input_tokens_details",
              "output_tokens_details"))  # fmt: skip
    tin, tout, in_details, out_details = names
    return TokenUsage(
        input_tokens=_count(usage, tin),
        output_tokens=_count(usage, tout),
        cache_read_tokens=_count(usage.get(in_details), "cached_tokens"),
        reasoning_tokens=_count(usage.get(out_details), "reasoning_tokens"),
    )


def _count(table: object, key: str) -> int | None:
    """``table[key]`` when it is an integer >= 0 (a bool is not), else None."""
    if not isinstance(table, Mapping):
        return None
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
