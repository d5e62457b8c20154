"""The notifier against a real HTTP provider on real stores: what each answer becomes
in the log, retries and their waits, the in-doubt policy, the severity floor, leaks
withheld, a clean stop, and two notifiers sending each notification once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import pytest
from delivery_fakes import FakeProvider, PostChannel

from conftest import FAIL_RULE, Make, config_with
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.notify.appends import WITHHELD
from kei.app.notify.runner import Runner
from kei.domain.events import AgentFailed, AgentForked, NotifyAttempted, NotifyFailed
from kei.domain.events.notify import notify_stream
from kei.domain.notify import Failed, Notification, SendOutcome
from kei.errors import LedgerStateError

S = 1_000_000


def types(ledger: Ledger, nid: str) -> list[str]:
    return [e.type for e in ledger.read_stream(notify_stream(nid))]


def attempted(ledger: Ledger) -> list[NotifyAttempted]:
    found = [e.payload() for e in ledger.read() if e.type == "notify.attempted"]
    return [p for p in found if isinstance(p, NotifyAttempted)]


def test_delivered_with_its_receipt(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    s = make_service().send("chat", "hello", "world", severity="warn")
    assert (s.state, s.attempts, s.receipt) == ("delivered", 1, "m-1")
    assert types(ledger, s.notification_id) == [
        "notify.requested", "notify.attempted", "notify.delivered",
    ]  # fmt: skip
    assert provider.subjects() == ["hello"]
    claim = attempted(ledger)[0]
    assert claim.request_sha256 == hashlib.sha256(provider.received[0]).hexdigest()


def test_a_key_names_one_notification(provider: FakeProvider, make_service: Make) -> None:
    service = make_service()
    service.send("chat", "once", key="deploy-42")
    with pytest.raises(LedgerStateError, match="requested before"):
        service.send("chat", "twice", key="deploy-42")
    assert provider.subjects() == ["once"]


def test_429_waits_at_least_retry_after_then_delivers(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    now = [1_000 * S]
    service = make_service(clock=lambda: now[0])
    provider.script.append("429")
    s = service.send("chat", "limited")
    assert (s.state, s.last_class) == ("retrying", "rate_limited")
    assert s.not_before_us is not None and s.not_before_us >= now[0] + 1 * S
    assert service.notifier.work([s.notification_id]) == 0  # not yet
    now[0] = s.not_before_us
    assert service.notifier.work([s.notification_id]) == 1
    after = service.show(s.notification_id).state
    assert (after.state, after.attempts, provider.count) == ("delivered", 2, 2)


def test_a_rejection_is_not_retried(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    provider.script.append("400")
    s = make_service().send("chat", "bad")
    assert (s.state, s.end_reason, provider.count) == ("abandoned", "not_retryable", 1)
    assert types(ledger, s.notification_id)[-2:] == ["notify.failed", "notify.abandoned"]


def test_the_budget_of_attempts_ends_in_abandoned(
    provider: FakeProvider, make_service: Make
) -> None:
    now = [0]
    provider.default = "500"
    service = make_service({"notifier": {"max_attempts": 3}}, clock=lambda: now[0])
    s = service.send("chat", "down")
    for _ in range(5):
        now[0] += 10_000 * S
        service.notifier.work([s.notification_id])
    final = service.show(s.notification_id).state
    assert (final.state, final.end_reason, final.attempts, provider.count) == (
        "abandoned", "max_attempts", 3, 3,
    )  # fmt: skip


def test_an_sms_that_timed_out_is_abandoned_not_resent(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    sms = PostChannel("pager", provider.url, kind="sms", timeout_s=0.5)
    provider.script.append("slow")
    s = make_service(channels={"pager": sms}).send("pager", "wake up", severity="error")
    assert (s.state, s.end_reason, provider.count) == ("abandoned", "in_doubt", 1)
    chat = PostChannel("pager", provider.url, kind="slack", timeout_s=0.5)
    provider.script.append("slow")
    now = [0]
    service = make_service(channels={"pager": chat}, clock=lambda: now[0])
    t = service.send("pager", "maybe twice")
    assert (t.state, t.last_class) == ("retrying", "timeout")
    now[0] = t.not_before_us or 0
    service.notifier.work([t.notification_id])
    again = service.show(t.notification_id).state
    assert (again.state, again.possible_duplicates) == ("delivered", 1)
    assert [a.after_in_doubt for a in attempted(ledger)] == [False, False, True]
    sms.close()
    chat.close()


def test_below_the_channels_floor_is_suppressed(provider: FakeProvider, make_service: Make) -> None:
    floor = PostChannel("pager", provider.url, kind="sms", min_severity="warn")
    s = make_service(channels={"pager": floor}).send("pager", "fyi", severity="info")
    assert (s.state, s.end_reason, provider.count) == ("suppressed", "below_min_severity", 0)
    floor.close()


def test_a_secret_in_a_providers_answer_is_withheld(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    class Leaky(PostChannel):
        def send(self, notification: Notification) -> SendOutcome:
            super().send(notification)
            return Failed(failure_class="auth", retryable=False, latency_us=1,
                          error="bad token xoxb-1234567890-abcdefghijklmnop")  # fmt: skip

    leaky = Leaky("chat", provider.url)
    s = make_service(channels={"chat": leaky}).send("chat", "x")
    failed = [e.payload() for e in ledger.read_stream(notify_stream(s.notification_id))]
    errors = [f.error for f in failed if isinstance(f, NotifyFailed)]
    assert (s.state, errors) == ("abandoned", [WITHHELD])
    leaky.close()


def test_a_stopped_notifier_claims_nothing_it_does_not_send(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    service = make_service({"notifier": {"senders": 2}})
    ids = [service.send("chat", f"n{i}", queue=True).notification_id for i in range(6)]
    provider.script.append("hold")
    worker = threading.Thread(target=service.notifier.work, args=(ids,))
    worker.start()
    assert provider.held.wait(10)
    service.notifier.stop.set()
    provider.release.set()
    worker.join(10)
    states = [service.show(i).state.state for i in ids]
    assert states.count("delivered") == 2 and states.count("pending") == 4  # two sent at once
    assert len(attempted(ledger)) == provider.count == 2
    service.notifier.stop.clear()
    assert service.notifier.work(ids) == 4
    assert provider.count == 6 and len(set(provider.subjects())) == 6


def test_a_rate_limited_channel_is_paced(provider: FakeProvider, make_service: Make) -> None:
    paced = PostChannel("chat", provider.url, min_interval_s=0.2)
    service = make_service(channels={"chat": paced})
    ids = [service.send("chat", f"n{i}", queue=True).notification_id for i in range(3)]
    assert service.notifier.work(ids) == 3
    gaps = [b - a for a, b in zip(provider.arrived, provider.arrived[1:], strict=False)]
    assert all(g >= 0.19 for g in gaps), gaps
    paced.close()


def test_two_notifiers_send_each_notification_once(
    ledger: Ledger,
    store_url: str,
    make_ledger: Callable[..., Ledger],
    provider: FakeProvider,
    make_service: Make,
) -> None:
    first = make_service({"notifier": {"senders": 4}})
    ids = [first.send("chat", f"n{i}", queue=True).notification_id for i in range(40)]
    second = make_service({"notifier": {"senders": 4}}, target=make_ledger(store_url))
    threads = [threading.Thread(target=s.notifier.work, args=(ids,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runner = Runner(first)
    runner.turn()  # whatever lost races is due again
    assert sorted(provider.subjects()) == sorted(f"n{i}" for i in range(40))
    assert len(attempted(ledger)) == provider.count == 40
    assert {first.show(i).state.state for i in ids} == {"delivered"}


def test_the_runner_sends_what_rules_request(
    ledger: Ledger, provider: FakeProvider, make_service: Make
) -> None:
    service = make_service(config_with(FAIL_RULE))
    stop = threading.Event()
    runner = Runner(service, stop)
    worker = threading.Thread(target=runner.run)
    worker.start()
    time.sleep(0.3)
    ledger.append([NewEvent("agent/x", AgentForked(agent_id="x", branch="b"), 0),
                   NewEvent("agent/x", AgentFailed(agent_id="x", reason="oom"), 1)])  # fmt: skip
    deadline = time.monotonic() + 20
    while provider.count < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(10)
    assert provider.subjects() == ["Agent x failed"]
    assert runner.report.requested == 1 and runner.report.sent == 1
