"""Event payload types: frozen msgspec Structs, encoded as deterministic msgpack.

Each type has a dotted name (stored as the event's type) and a schema version, kept
in the closed registry (``registry.py``). One module per event family: the log's
own (``ledger.py``), agent work (``agents.py``), the router (``routing.py``), the
LLM backends (``llm.py``), memory, traces, the leak matrix, notifications
(``notify.py``), network modes (``net.py``) and ``kei serve``'s API tokens
(``tokens.py``); their shared base and values are in ``payload.py``. This package re-exports them all, so
``from kei.domain.events import AgentForked`` names a type without its family.
Each import's ``X as X`` form is what marks it re-exported (PEP 484), so the names
are listed once here and not again in an ``__all__``.
"""

from __future__ import annotations

from kei.domain.events.agents import AgentCompleted as AgentCompleted
from kei.domain.events.agents import AgentFailed as AgentFailed
from kei.domain.events.agents import AgentForked as AgentForked
from kei.domain.events.agents import AgentMerged as AgentMerged
from kei.domain.events.agents import CostAmended as CostAmended
from kei.domain.events.agents import CostRecorded as CostRecorded
from kei.domain.events.agents import DnaClaimed as DnaClaimed
from kei.domain.events.agents import OutcomeRecorded as OutcomeRecorded
from kei.domain.events.agents import SkillInvoked as SkillInvoked
from kei.domain.events.budgets import BudgetCleared as BudgetCleared
from kei.domain.events.budgets import BudgetSet as BudgetSet
from kei.domain.events.budgets import ThresholdCrossed as ThresholdCrossed
from kei.domain.events.leaks import LeakNoted as LeakNoted
from kei.domain.events.ledger import GENESIS as GENESIS
from kei.domain.events.ledger import KEY_ADDED as KEY_ADDED
from kei.domain.events.ledger import KEY_EVENT_TYPES as KEY_EVENT_TYPES
from kei.domain.events.ledger import KEY_REVOKED as KEY_REVOKED
from kei.domain.events.ledger import SYSTEM_STREAM as SYSTEM_STREAM
from kei.domain.events.ledger import KeyAdded as KeyAdded
from kei.domain.events.ledger import KeyRevoked as KeyRevoked
from kei.domain.events.ledger import LedgerGenesis as LedgerGenesis
from kei.domain.events.llm import BackendRouteDecided as BackendRouteDecided
from kei.domain.events.llm import LlmCallCompleted as LlmCallCompleted
from kei.domain.events.mcp import ToolCalled as ToolCalled
from kei.domain.events.memory import MemoryCompacted as MemoryCompacted
from kei.domain.events.memory import MemoryForgotten as MemoryForgotten
from kei.domain.events.memory import MemoryWritten as MemoryWritten
from kei.domain.events.migrate import MigrationApplied as MigrationApplied
from kei.domain.events.migrate import MigrationDrift as MigrationDrift
from kei.domain.events.migrate import MigrationFailed as MigrationFailed
from kei.domain.events.migrate import MigrationResolved as MigrationResolved
from kei.domain.events.migrate import MigrationReverted as MigrationReverted
from kei.domain.events.migrate import MigrationStarted as MigrationStarted
from kei.domain.events.net import NetModeAttempted as NetModeAttempted
from kei.domain.events.net import NetModeConfigured as NetModeConfigured
from kei.domain.events.net import NetModeConfigureFailed as NetModeConfigureFailed
from kei.domain.events.net import NetModeDesired as NetModeDesired
from kei.domain.events.net import NetModeDrifted as NetModeDrifted
from kei.domain.events.net import NetModeTornDown as NetModeTornDown
from kei.domain.events.net import NetPeerAppeared as NetPeerAppeared
from kei.domain.events.net import NetPeerDisappeared as NetPeerDisappeared
from kei.domain.events.net import NetPeerObserved as NetPeerObserved
from kei.domain.events.notify import NotifyAbandoned as NotifyAbandoned
from kei.domain.events.notify import NotifyAttempted as NotifyAttempted
from kei.domain.events.notify import NotifyDelivered as NotifyDelivered
from kei.domain.events.notify import NotifyFailed as NotifyFailed
from kei.domain.events.notify import NotifyReceipt as NotifyReceipt
from kei.domain.events.notify import NotifyRequested as NotifyRequested
from kei.domain.events.notify import NotifyRequeued as NotifyRequeued
from kei.domain.events.notify import NotifySuppressed as NotifySuppressed
from kei.domain.events.payload import OUTCOMES as OUTCOMES
from kei.domain.events.payload import Origin as Origin
from kei.domain.events.payload import Outcome as Outcome
from kei.domain.events.payload import Payload as Payload
from kei.domain.events.payload import TokenUsage as TokenUsage
from kei.domain.events.project import ModuleIdentified as ModuleIdentified
from kei.domain.events.project import ModuleUnreadable as ModuleUnreadable
from kei.domain.events.project import PlanPhase as PlanPhase
from kei.domain.events.project import ProjectImportCompleted as ProjectImportCompleted
from kei.domain.events.project import ProjectImportStarted as ProjectImportStarted
from kei.domain.events.project import ProjectItemRemoved as ProjectItemRemoved
from kei.domain.events.project import SkillExtracted as SkillExtracted
from kei.domain.events.project import TraitMatched as TraitMatched
from kei.domain.events.registry import REGISTRY as REGISTRY
from kei.domain.events.registry import EventType as EventType
from kei.domain.events.registry import decode_payload as decode_payload
from kei.domain.events.registry import decode_untyped as decode_untyped
from kei.domain.events.registry import encode_payload as encode_payload
from kei.domain.events.registry import event_type_of as event_type_of
from kei.domain.events.registry import lookup as lookup
from kei.domain.events.registry import occurred_us as occurred_us
from kei.domain.events.routing import RouteDecided as RouteDecided
from kei.domain.events.routing import RouteEscalated as RouteEscalated
from kei.domain.events.routing import RouteOutcome as RouteOutcome
from kei.domain.events.routing import WeightsCalibrated as WeightsCalibrated
from kei.domain.events.store_schema import ProjectionRebuilt as ProjectionRebuilt
from kei.domain.events.store_schema import StoreMigrated as StoreMigrated
from kei.domain.events.tokens import TokenCreated as TokenCreated
from kei.domain.events.tokens import TokenRevoked as TokenRevoked
from kei.domain.events.traces import TraceRecorded as TraceRecorded
from kei.domain.events.traces import TraceRejected as TraceRejected
