"""Event payload types: frozen msgspec Structs, encoded as deterministic msgpack.

Each type has a dotted name (stored as the event's type) and a schema version, kept
in the closed registry (``registry.py``). One module per event family: the log's
own (``ledger.py``), agent work (``agents.py``), the router (``routing.py``), the
LLM backends (``llm.py``), memory, traces and the leak matrix; their shared base
and values are in ``payload.py``. This package re-exports them all, so
``from kei.domain.events import AgentForked`` names a type without its family.
"""

from __future__ import annotations

from kei.domain.events.agents import (
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    CostAmended,
    CostRecorded,
    DnaClaimed,
    OutcomeRecorded,
    SkillInvoked,
)
from kei.domain.events.leaks import LeakNoted
from kei.domain.events.ledger import (
    GENESIS,
    KEY_ADDED,
    KEY_EVENT_TYPES,
    KEY_REVOKED,
    SYSTEM_STREAM,
    KeyAdded,
    KeyRevoked,
    LedgerGenesis,
)
from kei.domain.events.llm import BackendRouteDecided, LlmCallCompleted
from kei.domain.events.memory import MemoryCompacted, MemoryForgotten, MemoryWritten
from kei.domain.events.payload import OUTCOMES, Origin, Outcome, Payload, TokenUsage
from kei.domain.events.registry import (
    REGISTRY,
    EventType,
    decode_payload,
    decode_untyped,
    encode_payload,
    event_type_of,
    lookup,
    occurred_us,
)
from kei.domain.events.routing import RouteDecided, RouteEscalated, RouteOutcome, WeightsCalibrated
from kei.domain.events.traces import TraceRecorded, TraceRejected

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
