from __future__ import annotations

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.verification import verify_store
from kei.domain import events


def test_append_read_verify(ledger: Ledger) -> None:
    recorded = ledger.append(
        [NewEvent("agent-1", events.AgentForked(agent_id="agent-1", branch="main"))]
    )
    assert recorded[0].version == 1
    assert [e.type for e in ledger.read()] == ["kei.ledger.genesis", "agent.forked"]
    assert verify_store(ledger.store).ok
