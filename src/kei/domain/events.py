"""Event payload types: frozen msgspec Structs, encoded as deterministic msgpack.

Each type has a dotted name (stored as the event's type) and a schema version. The
registry is closed: appending an event whose type is not registered is refused, and
decoding only ever resolves names through this table (never by importing a topic).
The base class and shared values live in ``payload.py``; the router's events in
``route_events.py``, the LLM backends' in ``llm_events.py``; all are registered here.

Evolution rules (see ``docs/events.md``): a new field gets a default and bumps the
schema version; a field's type never changes; names are never reused. Payloads
reject unknown fields, because a signed payload that decodes to less than it holds
would hide data from readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from kei.domain.leak_events import LeakNoted
from kei.domain.llm_events import BackendRouteDecided, LlmCallCompleted
from kei.domain.memory_events import MemoryCompacted, MemoryForgotten, MemoryWritten
from kei.domain.payload import (
    OUTCOMES,
    Origin,
    Outcome,
    Payload,
    TokenUsage,
)
from kei.domain.route_events import RouteDecided, RouteEscalated, RouteOutcome, WeightsCalibrated
from kei.domain.trace_events import TraceRecorded, TraceRejected
from kei.errors import InputError

__all__ = [
    "GENESIS",
    "KEY_ADDED",
    "KEY_EVENT_TYPES",
    "KEY_REVOKED",
    "OUTCOMES",
    "REGISTRY",
    "SYSTEM_STREAM",
    "AgentCompleted",
    "AgentFailed",
    "AgentForked",
    "AgentMerged",
    "BackendRouteDecided",
    "CostAmended",
    "CostRecorded",
    "DnaClaimed",
    "EventType",
    "KeyAdded",
    "KeyRevoked",
    "LeakNoted",
    "LedgerGenesis",
    "LlmCallCompleted",
    "MemoryCompacted",
    "MemoryForgotten",
    "MemoryWritten",
    "Origin",
    "Outcome",
    "OutcomeRecorded",
    "Payload",
    "RouteDecided",
    "RouteEscalated",
    "RouteOutcome",
    "SkillInvoked",
    "TokenUsage",
    "TraceRecorded",
    "TraceRejected",
    "WeightsCalibrated",
    "decode_payload",
    "decode_untyped",
    "encode_payload",
    "event_type_of",
    "lookup",
    "occurred_us",
]

SYSTEM_STREAM: Final = "kei.keys"
GENESIS: Final = "kei.ledger.genesis"
KEY_ADDED: Final = "kei.key.added"
KEY_REVOKED: Final = "kei.key.revoked"
KEY_EVENT_TYPES: Final = frozenset({GENESIS, KEY_ADDED, KEY_REVOKED})


class LedgerGenesis(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The first event: names the ledger and its first key (self-signed).

    ``signed_heads`` (new ledgers: True) declares that every append transaction ends
    with a signed head (``kei.domain.heads``); genesis events written before it existed
    lack the field and decode as False, so their ledgers verify as they always did."""

    ledger_id: str
    name: str
    key_id: str
    public_key: str
    key_name: str = ""
    signed_heads: bool = False


class KeyAdded(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A new signing key, vouched for by a key that is already active."""

    key_id: str
    public_key: str
    name: str = ""


class KeyRevoked(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A key stops being valid for every event after this one."""

    key_id: str
    reason: str


class AgentForked(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An agent started on a branch, possibly as the child of another agent."""

    agent_id: str
    branch: str
    parent_agent_id: str | None = None
    parent_branch: str | None = None
    spec_sha: str | None = None
    worktree: str | None = None
    dna: str | None = None
    creator: str | None = None
    fork_parent: str | None = None
    origin: Origin | None = None


class AgentCompleted(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An agent finished its work."""

    agent_id: str
    summary: str
    origin: Origin | None = None


class AgentFailed(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An agent gave up or crashed."""

    agent_id: str
    reason: str
    origin: Origin | None = None


class AgentMerged(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An agent's branch was merged."""

    agent_id: str
    origin: Origin | None = None


class DnaClaimed(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A DNA taken by an agent, appended at version 0 of stream ``dna/<dna>`` in the
    fork's batch, so two racing forks with one DNA cannot both land."""

    dna: str
    agent_id: str


class CostRecorded(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What one model call cost, in integer micro-cents (1 cent = 1,000,000)."""

    agent_id: str
    provider: str
    model: str
    micro_cents: int
    usage: TokenUsage = TokenUsage()
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    origin: Origin | None = None


class OutcomeRecorded(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How well an agent's work turned out: the router's success signal.

    Upstream had the columns (v9) but no writer; this event is the writer.
    ``escalation_depth`` 0 means first pass; ``None`` means unknown, as does a
    ``None`` ``stub_count`` (the number of ``todo!()``/``unimplemented!()`` left).
    """

    agent_id: str
    outcome: Outcome
    escalation_depth: int | None = None
    stub_count: int | None = None
    origin: Origin | None = None


class CostAmended(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Replaces one earlier cost event (upstream's ``record-cost --replace``).

    The superseded event is named by its stream and version, which its signature
    covers and which no store, restore or import renumbers (a position is
    assigned by the store and is not signed). It may name a ``cost.recorded`` or
    an earlier ``cost.amended``; the amount here replaces that event's amount.
    """

    agent_id: str
    supersedes_stream: str
    supersedes_version: int
    provider: str
    model: str
    micro_cents: int
    usage: TokenUsage = TokenUsage()
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    reason: str | None = None
    origin: Origin | None = None


class SkillInvoked(Payload, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One use of a skill, successful or not (upstream ``skill_invocations``)."""

    skill_name: str
    success: bool
    duration_ms: int | None = None
    agent_id: str | None = None
    trajectory_id: str | None = None
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class EventType:
    """One registered event type."""

    name: str
    payload_type: type[Payload]
    schema_version: int
    summary_fields: tuple[str, ...]


REGISTRY: Final[dict[str, EventType]] = {
    t.name: t
    for t in (
        EventType(GENESIS, LedgerGenesis, 1, ("name", "key_id")),
        EventType(KEY_ADDED, KeyAdded, 1, ("key_id", "name")),
        EventType(KEY_REVOKED, KeyRevoked, 1, ("key_id", "reason")),
        EventType("agent.forked", AgentForked, 2, ("agent_id", "branch", "parent_agent_id")),
        EventType("agent.completed", AgentCompleted, 2, ("agent_id", "summary")),
        EventType("agent.failed", AgentFailed, 2, ("agent_id", "reason")),
        EventType("agent.merged", AgentMerged, 2, ("agent_id",)),
        EventType("agent.dna.claimed", DnaClaimed, 1, ("dna", "agent_id")),
        EventType("cost.recorded", CostRecorded, 2, ("agent_id", "model", "micro_cents")),
        EventType("agent.outcome", OutcomeRecorded, 2, ("agent_id", "outcome")),
        EventType(
            "cost.amended",
            CostAmended,
            2,
            ("agent_id", "supersedes_stream", "supersedes_version", "micro_cents"),
        ),
        EventType("skill.invoked", SkillInvoked, 2, ("skill_name", "success", "agent_id")),
        EventType("route.decided", RouteDecided, 1, ("decision_id", "model", "reason")),
        EventType("route.escalated", RouteEscalated, 1, ("decision_id", "to_model", "depth")),
        EventType("route.outcome", RouteOutcome, 1, ("decision_id", "model", "outcome")),
        EventType("route.weights.calibrated", WeightsCalibrated, 1, ("mse", "baseline_mse")),
        EventType("llm.route.decided", BackendRouteDecided, 1, ("requested_model", "backend")),
        EventType("llm.call.completed", LlmCallCompleted, 1, ("backend", "model", "ok")),
        EventType("memory.written", MemoryWritten, 1, ("namespace", "key", "kind")),
        EventType("memory.forgotten", MemoryForgotten, 1, ("namespace", "key")),
        EventType("memory.compacted", MemoryCompacted, 1, ("namespace", "before_us")),
        EventType("leak.noted", LeakNoted, 1, ("stream", "event_type", "redacted_by")),
        EventType("trace.recorded", TraceRecorded, 1, ("session", "kind", "event_class")),
        EventType("trace.rejected", TraceRejected, 1, ("session", "line_no", "rule")),
    )
}
_BY_CLASS: Final = {t.payload_type: t for t in REGISTRY.values()}
_ENCODER: Final = msgspec.msgpack.Encoder()
_RAW_DECODER: Final = msgspec.msgpack.Decoder()
_DECODERS: Final = {name: msgspec.msgpack.Decoder(t.payload_type) for name, t in REGISTRY.items()}


def occurred_us(payload: Payload, recorded_us: int) -> int:
    """When the fact happened: an import's upstream time, else when kei signed it."""
    origin = getattr(payload, "origin", None)
    if isinstance(origin, Origin) and origin.occurred_at_us is not None:
        return origin.occurred_at_us
    return recorded_us


def event_type_of(payload: Payload) -> EventType:
    """The registered type of a payload object; refuses unregistered classes."""
    try:
        return _BY_CLASS[type(payload)]
    except KeyError:
        raise InputError(
            f"unknown event type {type(payload).__name__}",
            hint="register the payload class in kei.domain.events.REGISTRY",
        ) from None


def lookup(name: str) -> EventType:
    """The registered type called ``name``; refuses unknown names."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown event type {name!r}", hint=f"known types: {known}") from None


def encode_payload(payload: Payload) -> bytes:
    """Deterministic msgpack: Struct fields in declaration order."""
    return _ENCODER.encode(payload)


def decode_payload(type_name: str, raw: bytes) -> Payload:
    """Decode into the registered Struct; raises InputError for unknown or invalid data."""
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        lookup(type_name)
    assert decoder is not None
    try:
        result: Payload = decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InputError(f"payload of {type_name} does not decode: {exc}") from exc
    return result


def decode_untyped(raw: bytes) -> Any:
    """Decode any payload without knowing its type (for tail and unknown events)."""
    try:
        return _RAW_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
