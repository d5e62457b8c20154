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

from kei.adapters.keyfile import load_key, write_key
from kei.adapters.ledger import Ledger, NewEvent
from kei.adapters.verification import VerifyReport, verify_store
from kei.domain.events import (
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    CostRecorded,
    KeyAdded,
    KeyRevoked,
    LedgerGenesis,
    Payload,
    TokenUsage,
)
from kei.domain.keys import SigningKey
from kei.domain.recorded import RecordedEvent
from kei.domain.verify import Finding, FindingKind
from kei.errors import (
    ConcurrencyError,
    InputError,
    KeiError,
    KeyFileError,
    LedgerStateError,
    StoreError,
    StoreNotInitialisedError,
    VerificationError,
)

__version__ = "0.1.0"

__all__ = [
    "AgentCompleted",
    "AgentFailed",
    "AgentForked",
    "AgentMerged",
    "ConcurrencyError",
    "CostRecorded",
    "Finding",
    "FindingKind",
    "InputError",
    "KeiError",
    "KeyAdded",
    "KeyFileError",
    "KeyRevoked",
    "Ledger",
    "LedgerGenesis",
    "LedgerStateError",
    "NewEvent",
    "Payload",
    "RecordedEvent",
    "SigningKey",
    "StoreError",
    "StoreNotInitialisedError",
    "TokenUsage",
    "VerificationError",
    "VerifyReport",
    "load_key",
    "verify_store",
    "write_key",
]
