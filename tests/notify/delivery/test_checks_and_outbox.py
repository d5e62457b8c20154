"""The scheduled checks (verify-chain findings, stalled agents) and the outbox read
model: a finding or a stall is notified once; the outbox says what the streams say,
whatever the page size, on both stores."""

from __future__ import annotations

import time
from typing import Any

from delivery_fakes import FakeProvider

from cli_helpers import run_sql
from conftest import Make, config_with
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.notify.runner import Runner
from kei.domain.events import AgentForked, CostRecorded
from kei.domain.events.notify import NOTIFY_STREAM_PREFIX
from kei.domain.notify.state import fold_stream
from kei.projections.notify_outbox import NotifyOutbox, to_state

S = 1_000_000
VERIFY = {"id": "tamper", "on": "check:verify-chain", "channel": "chat", "severity": "error",
          "template": {"subject": "{kind} at {position}", "body": "{detail}"}}  # fmt: skip
STALLED = {"id": "stalled", "on": "check:stalled-agent", "idle_s": 60, "channel": "chat",
           "template": {"subject": "{agent_id} quiet after {last_type}"}}  # fmt: skip


def test_a_verify_finding_is_notified_once(
    ledger: Ledger, store_url: str, provider: FakeProvider, make_service: Make
) -> None:
    now = [time.time_ns() // 1000]
    service = make_service(config_with(VERIFY), clock=lambda: now[0])
    runner = Runner(service)
    runner.run(once=True)
    assert provider.count == 0  # a clean log
    position = max(e.position for e in ledger.read())
    run_sql(store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (b"\x01" * 32, position))
    now[0] += 4000 * S
    runner.run(once=True)
    subjects = provider.subjects()
    assert subjects and all(s.endswith(f"at {position}") for s in subjects)
    now[0] += 4000 * S
    runner.run(once=True)  # the same findings: nothing new
    assert provider.subjects() == subjects


def test_a_stalled_agent_is_notified_once_per_stall(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    now = [time.time_ns() // 1000]
    service = make_service(config_with(STALLED), clock=lambda: now[0])
    runner = Runner(service)
    runner.run(once=True)
    ledger.append([NewEvent("agent/a", AgentForked(agent_id="a", branch="b"), 0),
                   NewEvent("agent/b", AgentForked(agent_id="b", branch="b"), 0)])  # fmt: skip
    runner.run(once=True)
    assert provider.count == 0
    now[0] += 120 * S
    runner.run(once=True)
    assert sorted(provider.subjects()) == [
        "a quiet after agent.forked",
        "b quiet after agent.forked",
    ]
    cost = CostRecorded(agent_id="a", provider="p", model="m", micro_cents=1)
    ledger.append([NewEvent("agent/a", cost, 1)])
    now[0] = time.time_ns() // 1000 + 30 * S  # a moved 30 s ago: not stalled
    runner.checks._next.clear()
    runner.run(once=True)
    assert provider.count == 2  # and b's stall was told already
    now[0] += 3600 * S
    runner.checks._next.clear()
    runner.run(once=True)
    assert provider.subjects()[2:] == ["a quiet after cost.recorded"]


def rows_and_streams(ledger: Ledger, engine: ProjectionEngine, outbox: NotifyOutbox) -> Any:
    engine.catch_up()
    with engine.connect("read") as conn:
        rows = {r[0]: to_state(tuple(r)) for r in conn.execute(outbox.table.select())}
    streams: dict[str, list[Any]] = {}
    for e in ledger.read():
        if e.stream.startswith(NOTIFY_STREAM_PREFIX):
            streams.setdefault(e.stream.removeprefix(NOTIFY_STREAM_PREFIX), []).append(
                (e.payload(), e.version, e.timestamp_us)
            )
    return rows, {k: fold_stream(v) for k, v in streams.items()}


def test_the_outbox_says_what_each_stream_says(
    ledger: Ledger, store_url: str, provider: FakeProvider, make_service: Make
) -> None:
    service = make_service()
    provider.script.extend(["429", "400", "ok", "500"])
    for i in range(6):
        service.send("chat", f"n{i}")
    outbox = NotifyOutbox()
    whole = ProjectionEngine(ledger.url, ledger.store, [outbox])
    rows, folded = rows_and_streams(ledger, whole, outbox)
    assert set(rows) == set(folded)
    for nid, state in folded.items():
        assert state is not None
        light = rows[nid]
        assert (light.state, light.attempts, light.claim, light.not_before_us, light.receipt,
                light.possible_duplicates, light.version) == (
            state.state, state.attempts, state.claim, state.not_before_us, state.receipt,
            state.possible_duplicates, state.version,
        )  # fmt: skip
    digest = whole.digest(outbox.name)
    whole.close()
    one_by_one = ProjectionEngine(ledger.url, ledger.store, [NotifyOutbox()], page_size=1)
    one_by_one.rebuild()
    assert one_by_one.digest(outbox.name) == digest
    one_by_one.close()
