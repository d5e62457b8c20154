"""The base of every event payload, and the small values several event families share.

Kept apart from the registry (``kei.domain.events``) so each family of events can live
in a module of its own (``route_events``, ``llm_events``) and still be registered in
one closed table without an import cycle.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec


class Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every event payload.

    Subclasses inherit ``forbid_unknown_fields`` from here. They still say
    ``frozen=True`` (mypy refuses a frozen base without it) and ``kw_only=True``
    (msgspec applies it only to the fields of the class that says it).
    """


class Origin(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where an imported fact came from, and when it happened there.

    The envelope's timestamp says when kei signed the event. An importer also knows
    when the fact happened upstream and which upstream row held it: reports use the
    first, and a re-run import uses the second to recognise what it carried over.
    """

    source: str
    occurred_at_us: int | None = None
    ref: str | None = None


class TokenUsage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Token counts of one model call in OpenTelemetry GenAI terms; None means unknown,
    not zero.

    The convention (``gen_ai.usage.*``, ``docs/events.md`` "Token usage"):

    - ``input_tokens`` counts *every* input token, cached ones included
      (``gen_ai.usage.input_tokens``: "SHOULD include all types of input tokens, including
      cached tokens"). OpenAI's ``prompt_tokens`` already does; Anthropic's
      ``input_tokens`` does not, so ``kei.domain.catalog.usage.from_anthropic`` adds the
      cache counts in.
    - ``cache_read_tokens`` (``gen_ai.usage.cache_read.input_tokens``) and
      ``cache_write_tokens`` (``gen_ai.usage.cache_creation.input_tokens``) are parts of
      ``input_tokens``; ``cache_write_1h_tokens`` is the part of ``cache_write_tokens``
      written with a one-hour lifetime (the rest were written for five minutes).
    - ``output_tokens`` counts every output token, reasoning included;
      ``reasoning_tokens`` (``gen_ai.usage.reasoning.output_tokens``) is a part of it.

    ``cache_write_1h_tokens`` is new in schema 2 of the cost events; bytes written
    before it decode with None.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_1h_tokens: int | None = None


Outcome = Literal["functional", "partial", "scaffolding", "fail"]
OUTCOMES: Final[tuple[str, ...]] = ("functional", "partial", "scaffolding", "fail")
