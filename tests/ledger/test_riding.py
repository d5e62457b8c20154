"""Riders (``app/ledger/riding.py``): an adapter's events in the batch a service appends.

``kei mcp serve`` records each changing tool call this way; here the ledger alone: the
rider's events land in the service's transaction (or with it, not at all), pass the
leak matrix like the service's, are asked for again when a write is retried, and stay
out of what ``append`` returns and out of other threads' batches.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from kei.app.agents import AgentService
from kei.app.ledger.appending import NewEvent
from kei.app.ledger.ledger import Ledger
from kei.domain import events
from kei.domain.events.mcp import mcp_stream
from kei.domain.log.recorded import RecordedEvent
from kei.errors import ConcurrencyError, LeakBlockedError

GITHUB = "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"


class Note:
    """A rider that records one ``mcp.tool.called`` with ``error`` text, once."""

    def __init__(self, error: str = "") -> None:
        self.error, self.asked, self.recorded = error, 0, list[RecordedEvent]()

    def events(self, batch: Sequence[NewEvent]) -> Sequence[NewEvent]:
        self.asked += 1
        if self.recorded:
            return ()
        payload = events.ToolCalled(session="s1", tool="t", args_sha256="0" * 64,
                                    error=self.error, appended=len(batch), duration_us=1)  # fmt: skip
        return [NewEvent(mcp_stream("s1"), payload)]

    def landed(self, recorded: Sequence[RecordedEvent]) -> None:
        self.recorded = list(recorded)


def test_the_rider_lands_in_the_services_batch_and_only_once(ledger: Ledger) -> None:
    note = Note()
    with ledger.riding(note), AgentService(ledger) as agents:
        agents.fork(events.AgentForked(agent_id="a", branch="b"))
        agents.done("a", "done")  # a second append in the block: the rider has landed
    everything = list(ledger.read())
    assert [e.type for e in everything[-3:]] == [
        "agent.forked",
        "mcp.tool.called",
        "agent.completed",
    ]
    forked, called = everything[-3], everything[-2]
    assert note.recorded[0].position == called.position
    assert called.timestamp_us == forked.timestamp_us  # one batch, sealed together
    assert note.asked == 2


def test_append_returns_only_the_callers_events(ledger: Ledger) -> None:
    with ledger.riding(Note()):
        done = ledger.append([NewEvent("agent/x", events.AgentForked(agent_id="x", branch="b"))])
    assert [e.type for e in done] == ["agent.forked"]


def test_a_secret_in_the_riders_text_refuses_the_whole_batch(ledger: Ledger) -> None:
    before = ledger.store.count()
    with ledger.riding(Note(error=f"token {GITHUB}")), pytest.raises(LeakBlockedError) as e:
        ledger.append([NewEvent("agent/y", events.AgentForked(agent_id="y", branch="b"))])
    assert GITHUB not in str(e.value) and ledger.store.count() == before


def test_a_lost_race_asks_the_rider_again_and_lands_it_once(ledger: Ledger) -> None:
    note = Note()
    ledger.append([NewEvent("agent/r", events.AgentForked(agent_id="r", branch="b"))])
    with ledger.riding(note):
        stale = NewEvent("agent/r", events.AgentMerged(agent_id="r"), expected_version=0)
        with pytest.raises(ConcurrencyError):
            ledger.append([stale])
        assert not note.recorded
        ledger.append([NewEvent("agent/r", events.AgentMerged(agent_id="r"), expected_version=1)])
    assert note.asked == 2 and len(note.recorded) == 1
    assert sum(e.type == "mcp.tool.called" for e in ledger.read()) == 1


def test_another_thread_never_carries_the_rider(ledger: Ledger) -> None:
    note = Note()

    def other() -> None:
        ledger.append([NewEvent("agent/t", events.AgentForked(agent_id="t", branch="b"))])

    with ledger.riding(note):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert note.asked == 0
    assert not any(e.type == "mcp.tool.called" for e in ledger.read())
