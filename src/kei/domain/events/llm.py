"""Events of calls made through kei's local LLM backends (Ollama, llama.cpp, MLX).

Every call through kei appends which backend was chosen for the requested model and
why (``llm.route.decided``), then how the call went (``llm.call.completed``: usage,
durations, finish reason, or the error that ended it), and its cost as an ordinary
``cost.recorded`` when it ran for an agent. A call lives on its own stream
``llm/<call_id>``. Durations are integer microseconds; a count or duration the backend
did not report stays None (Ollama drops the prompt count of a cached prompt: unknown,
not zero).
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.payload import Payload, TokenUsage

LLM_STREAM_PREFIX: Final = "llm/"


class BackendRouteDecided(Payload, frozen=True, kw_only=True):
    """Which backend serves a requested model: ``exact`` or fuzzy name match, and the
    backends tried in order (upstream's ``RouteDecision`` plus what it left out)."""

    call_id: str
    requested_model: str
    backend: str
    model: str
    exact: bool
    tried: tuple[str, ...] = ()
    rationale: tuple[str, ...] = ()
    require_local: bool = False
    capability: str | None = None


class LlmCallCompleted(Payload, frozen=True, kw_only=True):
    """One generate or chat call, finished or failed (``error`` says how it failed).

    ``micro_cents`` is the call priced from the catalog (local models usually cost 0),
    with the price entry that produced it; a call made for an agent also appends a
    ``cost.recorded`` for that agent, so cost reports include it. ``speed`` and
    ``speed_unpriced`` (schema 3) mean what they mean in ``cost.recorded``: the speed
    the call was priced at (``kei llm chat --speed``), and whether the entry had no
    rates for it (standard rates then).
    """

    call_id: str
    backend: str
    model: str
    ok: bool
    usage: TokenUsage = TokenUsage()
    total_us: int | None = None
    load_us: int | None = None
    prompt_us: int | None = None
    generation_us: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    agent_id: str | None = None
    micro_cents: int | None = None
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    speed: str | None = None  # schema 3
    speed_unpriced: bool = False  # schema 3


def call_stream(call_id: str) -> str:
    """The stream of one call."""
    return LLM_STREAM_PREFIX + call_id
