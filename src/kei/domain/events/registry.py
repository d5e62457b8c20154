"""The closed event registry: every type's name, payload Struct and schema version.

Decoding only ever resolves names through this table (never by importing a topic).
Evolution rules (``docs/events.md``): a new field gets a default and bumps the schema
version; a field's type never changes; names are never reused. Payloads reject
unknown fields, because a signed payload that decodes to less than it holds would
hide data from readers.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import Struct

from kei.domain.events import (
    agents,
    budgets,
    leaks,
    ledger,
    llm,
    mcp,
    memory,
    migrate,
    net,
    notify,
    project,
    routing,
    store_schema,
    tokens,
    traces,
)
from kei.domain.events.payload import Origin, Payload
from kei.errors import InputError


class EventType(Struct, frozen=True):
    """One registered event type."""

    name: str
    payload_type: type[Payload]
    schema_version: int
    summary_fields: tuple[str, ...]


REGISTRY: Final[dict[str, EventType]] = {
    t.name: t
    for t in (
        EventType(ledger.GENESIS, ledger.LedgerGenesis, 1, ("name", "key_id")),
        EventType(ledger.KEY_ADDED, ledger.KeyAdded, 1, ("key_id", "name")),
        EventType(ledger.KEY_REVOKED, ledger.KeyRevoked, 1, ("key_id", "reason")),
        EventType("agent.forked", agents.AgentForked, 2, ("agent_id", "branch", "parent_agent_id")),
        EventType("agent.completed", agents.AgentCompleted, 2, ("agent_id", "summary")),
        EventType("agent.failed", agents.AgentFailed, 2, ("agent_id", "reason")),
        EventType("agent.merged", agents.AgentMerged, 2, ("agent_id",)),
        EventType("agent.dna.claimed", agents.DnaClaimed, 1, ("dna", "agent_id")),
        EventType("cost.recorded", agents.CostRecorded, 5, ("agent_id", "model", "micro_cents")),
        EventType("agent.outcome", agents.OutcomeRecorded, 2, ("agent_id", "outcome")),
        EventType(
            "cost.amended",
            agents.CostAmended,
            4,
            ("agent_id", "supersedes_stream", "supersedes_version", "micro_cents"),
        ),
        EventType("skill.invoked", agents.SkillInvoked, 2, ("skill_name", "success", "agent_id")),
        EventType("route.decided", routing.RouteDecided, 2, ("decision_id", "model", "reason")),
        EventType(
            "route.escalated", routing.RouteEscalated, 1, ("decision_id", "to_model", "depth")
        ),
        EventType("route.outcome", routing.RouteOutcome, 1, ("decision_id", "model", "outcome")),
        EventType(
            "route.weights.calibrated", routing.WeightsCalibrated, 1, ("mse", "baseline_mse")
        ),
        EventType("llm.route.decided", llm.BackendRouteDecided, 1, ("requested_model", "backend")),
        EventType("llm.call.completed", llm.LlmCallCompleted, 3, ("backend", "model", "ok")),
        EventType("memory.written", memory.MemoryWritten, 1, ("namespace", "key", "kind")),
        EventType("memory.forgotten", memory.MemoryForgotten, 1, ("namespace", "key")),
        EventType("memory.compacted", memory.MemoryCompacted, 1, ("namespace", "before_us")),
        EventType("leak.noted", leaks.LeakNoted, 1, ("stream", "event_type", "redacted_by")),
        EventType("trace.recorded", traces.TraceRecorded, 1, ("session", "kind", "event_class")),
        EventType("trace.rejected", traces.TraceRejected, 1, ("session", "line_no", "rule")),
        EventType(mcp.TOOL_CALLED, mcp.ToolCalled, 1, ("tool", "client_name", "is_error")),
        EventType("budget.set", budgets.BudgetSet, 1, ("scope", "period", "limit_micro_cents")),
        EventType("budget.cleared", budgets.BudgetCleared, 1, ("scope", "period")),
        EventType(
            "budget.threshold.crossed",
            budgets.ThresholdCrossed,
            1,
            ("scope", "period_key", "threshold_percent"),
        ),
        EventType(
            "migrate.started", migrate.MigrationStarted, 1, ("target", "version", "direction")
        ),
        EventType("migrate.applied", migrate.MigrationApplied, 1, ("target", "version", "name")),
        EventType("migrate.reverted", migrate.MigrationReverted, 1, ("target", "version", "name")),
        EventType("migrate.failed", migrate.MigrationFailed, 1, ("target", "version", "partial")),
        EventType(
            "migrate.resolved", migrate.MigrationResolved, 1, ("target", "version", "resolution")
        ),
        EventType("migrate.drift", migrate.MigrationDrift, 1, ("target", "drift", "version")),
        EventType("store.migrated", store_schema.StoreMigrated, 1, ("from_version", "to_version")),
        EventType("projection.rebuilt", store_schema.ProjectionRebuilt, 1, ("name", "to_version")),
        EventType("notify.requested", notify.NotifyRequested, 1, ("channel", "subject")),
        EventType("notify.attempted", notify.NotifyAttempted, 1, ("attempt", "notifier")),
        EventType("notify.delivered", notify.NotifyDelivered, 1, ("attempt", "receipt")),
        EventType("notify.failed", notify.NotifyFailed, 1, ("attempt", "failure_class")),
        EventType("notify.suppressed", notify.NotifySuppressed, 1, ("reason",)),
        EventType("notify.abandoned", notify.NotifyAbandoned, 1, ("reason", "attempt")),
        EventType("notify.requeued", notify.NotifyRequeued, 1, ("reason",)),
        EventType("notify.receipt", notify.NotifyReceipt, 1, ("provider_status", "receipt")),
        EventType("project.import.started", project.ProjectImportStarted, 1, ("project", "source")),
        EventType(
            "project.module.identified", project.ModuleIdentified, 1, ("module_id", "name", "files")
        ),
        EventType("project.module.unreadable", project.ModuleUnreadable, 1, ("module_id", "error")),
        EventType(
            "project.trait.matched", project.TraitMatched, 1, ("module_id", "trait", "confidence")
        ),
        EventType("project.skill.extracted", project.SkillExtracted, 1, ("key", "source_path")),
        EventType("project.item.removed", project.ProjectItemRemoved, 1, ("item", "item_id")),
        EventType("project.plan.phase", project.PlanPhase, 1, ("phase_id", "trait", "status")),
        EventType(
            "project.import.completed", project.ProjectImportCompleted, 1, ("project", "modules")
        ),
        EventType("net.mode.desired", net.NetModeDesired, 1, ("mode", "name", "state")),
        EventType("net.mode.attempted", net.NetModeAttempted, 1, ("action", "attempt")),
        EventType("net.mode.configured", net.NetModeConfigured, 1, ("attempt", "config_sha256")),
        EventType(
            "net.mode.configure_failed", net.NetModeConfigureFailed, 1, ("action", "exit_code")
        ),
        EventType("net.mode.torn_down", net.NetModeTornDown, 1, ("attempt",)),
        EventType("net.mode.drifted", net.NetModeDrifted, 1, ("observed",)),
        EventType("net.peer.appeared", net.NetPeerAppeared, 1, ("peer_id", "endpoint")),
        EventType("net.peer.observed", net.NetPeerObserved, 1, ("peer_id", "rx_bytes", "tx_bytes")),
        EventType("net.peer.disappeared", net.NetPeerDisappeared, 1, ("peer_id", "reason")),
        EventType(tokens.TOKEN_CREATED, tokens.TokenCreated, 1, ("token_id", "name", "scope")),
        EventType(tokens.TOKEN_REVOKED, tokens.TokenRevoked, 1, ("token_id", "reason")),
    )
}
_BY_CLASS: Final = {t.payload_type: t for t in REGISTRY.values()}
_ENCODER: Final = msgspec.msgpack.Encoder()
_RAW_DECODER: Final = msgspec.msgpack.Decoder()
_DECODERS: Final[dict[str, msgspec.msgpack.Decoder[Any]]] = {}  # per type, made on first use


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
    if decoder is None:  # a command decodes a few types: building all 27 costs ms
        decoder = _DECODERS[type_name] = msgspec.msgpack.Decoder(lookup(type_name).payload_type)
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
