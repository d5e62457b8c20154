"""kei: the tamper-evident memory of an AI-agent orchestrator.

Every fact is appended to one log as an ed25519-signed, hash-chained event; every
report is a projection replayed from it. The embeddable API::

    from kei import Ledger, NewEvent, AgentForked, load_key

    key = load_key(Path("~/.kei/keys/default.key").expanduser())
    with Ledger.open("sqlite:////home/me/.kei/ledger.db", key=key) as ledger:
        ledger.append([NewEvent("agent-7", AgentForked(agent_id="agent-7", branch="main"))])
        for event in ledger.read():
            handle(event.position, event.type, event.payload())
        assert ledger.verify().ok
"""

from __future__ import annotations

import importlib

# Not ``typing.TYPE_CHECKING``: importing typing costs a ``kei`` command routed to the
# daemon (``adapters/daemon/client.py``) about a third of its own start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kei.adapters.files.keyfile import load_key, write_key
    from kei.app.agents import AgentService
    from kei.app.costs import CostService
    from kei.app.ledger.ledger import Ledger, NewEvent
    from kei.app.ledger.retrying import RetryPolicy
    from kei.app.ledger.verification import VerifyReport, verify_store
    from kei.domain.events import (
        AgentCompleted,
        AgentFailed,
        AgentForked,
        AgentMerged,
        BackendRouteDecided,
        BudgetCleared,
        BudgetSet,
        CostAmended,
        CostRecorded,
        DnaClaimed,
        KeyAdded,
        KeyRevoked,
        LeakNoted,
        LedgerGenesis,
        LlmCallCompleted,
        MemoryCompacted,
        MemoryForgotten,
        MemoryWritten,
        MigrationApplied,
        MigrationDrift,
        MigrationFailed,
        MigrationResolved,
        MigrationReverted,
        MigrationStarted,
        ModuleIdentified,
        ModuleUnreadable,
        NetModeAttempted,
        NetModeConfigured,
        NetModeConfigureFailed,
        NetModeDesired,
        NetModeDrifted,
        NetModeTornDown,
        NetPeerAppeared,
        NetPeerDisappeared,
        NetPeerObserved,
        NotifyAbandoned,
        NotifyAttempted,
        NotifyDelivered,
        NotifyFailed,
        NotifyReceipt,
        NotifyRequested,
        NotifyRequeued,
        NotifySuppressed,
        Origin,
        OutcomeRecorded,
        Payload,
        PlanPhase,
        ProjectImportCompleted,
        ProjectImportStarted,
        ProjectionRebuilt,
        ProjectItemRemoved,
        RouteDecided,
        RouteEscalated,
        RouteOutcome,
        SkillExtracted,
        SkillInvoked,
        StoreMigrated,
        ThresholdCrossed,
        TokenCreated,
        TokenRevoked,
        TokenUsage,
        ToolCalled,
        TraceRecorded,
        TraceRejected,
        TraitMatched,
        WeightsCalibrated,
    )
    from kei.domain.log.findings import Finding, FindingKind
    from kei.domain.log.keys import SigningKey
    from kei.domain.log.recorded import RecordedEvent
    from kei.errors import (
        ConcurrencyError,
        ContentionError,
        InputError,
        KeiError,
        KeyFileError,
        LedgerStateError,
        StoreError,
        StoreNotInitialisedError,
        VerificationError,
    )

# Where each public name lives; every name in ``__all__`` not listed here is an event
# type or shared payload value from ``kei.domain.events``. Importing ``kei`` loads none of
# them: the CLI imports this package on every run, and a command that never opens a store
# should not pay for the store's libraries.
_EVENTS = "kei.domain.events"
_HOMES = {
    "kei.adapters.files.keyfile": ("load_key", "write_key"),
    "kei.app.agents": ("AgentService",),
    "kei.app.costs": ("CostService",),
    "kei.app.ledger.ledger": ("Ledger", "NewEvent"),
    "kei.app.ledger.retrying": ("RetryPolicy",),
    "kei.app.ledger.verification": ("VerifyReport", "verify_store"),
    "kei.domain.log.keys": ("SigningKey",),
    "kei.domain.log.recorded": ("RecordedEvent",),
    "kei.domain.log.findings": ("Finding", "FindingKind"),
    "kei.errors": (
        "ConcurrencyError",
        "ContentionError",
        "InputError",
        "KeiError",
        "KeyFileError",
        "LedgerStateError",
        "StoreError",
        "StoreNotInitialisedError",
        "VerificationError",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name) or (_EVENTS if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module 'kei' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

# The names promised to embedders, and only these: every other module path may move
# between releases. A literal list, so type checkers see the re-exports;
# tests/ledger/test_public_api.py keeps it, _HOMES, the TYPE_CHECKING imports, the
# event registry and the README in step.
__all__ = [
    "AgentCompleted",
    "AgentFailed",
    "AgentForked",
    "AgentMerged",
    "AgentService",
    "BackendRouteDecided",
    "BudgetCleared",
    "BudgetSet",
    "ConcurrencyError",
    "ContentionError",
    "CostAmended",
    "CostRecorded",
    "CostService",
    "DnaClaimed",
    "Finding",
    "FindingKind",
    "InputError",
    "KeiError",
    "KeyAdded",
    "KeyFileError",
    "KeyRevoked",
    "LeakNoted",
    "Ledger",
    "LedgerGenesis",
    "LedgerStateError",
    "LlmCallCompleted",
    "MemoryCompacted",
    "MemoryForgotten",
    "MemoryWritten",
    "MigrationApplied",
    "MigrationDrift",
    "MigrationFailed",
    "MigrationResolved",
    "MigrationReverted",
    "MigrationStarted",
    "ModuleIdentified",
    "ModuleUnreadable",
    "NetModeAttempted",
    "NetModeConfigureFailed",
    "NetModeConfigured",
    "NetModeDesired",
    "NetModeDrifted",
    "NetModeTornDown",
    "NetPeerAppeared",
    "NetPeerDisappeared",
    "NetPeerObserved",
    "NewEvent",
    "NotifyAbandoned",
    "NotifyAttempted",
    "NotifyDelivered",
    "NotifyFailed",
    "NotifyReceipt",
    "NotifyRequested",
    "NotifyRequeued",
    "NotifySuppressed",
    "Origin",
    "OutcomeRecorded",
    "Payload",
    "PlanPhase",
    "ProjectImportCompleted",
    "ProjectImportStarted",
    "ProjectItemRemoved",
    "ProjectionRebuilt",
    "RecordedEvent",
    "RetryPolicy",
    "RouteDecided",
    "RouteEscalated",
    "RouteOutcome",
    "SigningKey",
    "SkillExtracted",
    "SkillInvoked",
    "StoreError",
    "StoreMigrated",
    "StoreNotInitialisedError",
    "ThresholdCrossed",
    "TokenCreated",
    "TokenRevoked",
    "TokenUsage",
    "ToolCalled",
    "TraceRecorded",
    "TraceRejected",
    "TraitMatched",
    "VerificationError",
    "VerifyReport",
    "WeightsCalibrated",
    "load_key",
    "verify_store",
    "write_key",
]
