"""The delivery policy and the fold, pure (``kei.domain.notify.policy``, ``.state``):
a simulated notifier driven by hypothesis through sends, failures and crashes, checking
that attempts stay within the budget, that an at-most-once channel never sends after
an outcome it could not see, and that every possible duplicate is counted in the log."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain.events.notify import NotifyAttempted, NotifyRequested, NotifyRequeued
from kei.domain.events.payload import Payload
from kei.domain.notify.outcome import Delivered, Failed
from kei.domain.notify.policy import (
    Append,
    Claim,
    DeliveryPolicy,
    Done,
    Wait,
    after_send,
    decide,
    delay_s,
)
from kei.domain.notify.state import NotificationState, fold, fold_stream, start

REQ = NotifyRequested(notification_id="n" * 64, cause="send", channel="c", channel_kind="slack",
                      severity="warn", subject="s")  # fmt: skip
S = 1_000_000


def run(events: list[Payload]) -> NotificationState:
    state = fold_stream([(p, v, v) for v, p in enumerate([REQ, *events], start=1)])
    assert state is not None
    return state


def claim(attempt: int, lease: int = 10 * S, doubt: bool = False) -> NotifyAttempted:
    return NotifyAttempted(notification_id=REQ.notification_id, attempt=attempt, notifier="h:1:-:m",
                           request_sha256="x", lease_until_us=lease, after_in_doubt=doubt)  # fmt: skip


def test_a_claim_without_outcome_waits_for_its_lease_then_follows_the_policy() -> None:
    s = run([claim(1, lease=10 * S)])
    assert decide(s, DeliveryPolicy(), 5 * S) == Wait(10 * S)
    assert decide(s, DeliveryPolicy(), 11 * S) == Claim(2, after_in_doubt=True)
    assert decide(s, DeliveryPolicy(), 5 * S, claim_gone=True) == Claim(2, after_in_doubt=True)
    sms = decide(s, DeliveryPolicy(in_doubt="abandon"), 11 * S)
    assert isinstance(sms, Append) and sms.payload.reason == "in_doubt"  # type: ignore[attr-defined]


def test_severity_floor_and_expiry_suppress_before_any_send() -> None:
    below = decide(run([]), DeliveryPolicy(min_severity="error"), 0)
    assert isinstance(below, Append) and below.payload.reason == "below_min_severity"  # type: ignore[attr-defined]
    expiring = NotificationState(request=NotifyRequested(**{**_fields(REQ), "not_after_us": 5}),
                                 requested_us=0, version=1)  # fmt: skip
    late = decide(expiring, DeliveryPolicy(), 6)
    assert isinstance(late, Append) and late.payload.reason == "expired"  # type: ignore[attr-defined]


def _fields_of(s: NotificationState) -> dict[str, object]:
    return {f: getattr(s, f) for f in s.__struct_fields__}


def _fields(p: NotifyRequested) -> dict[str, object]:
    return {f: getattr(p, f) for f in p.__struct_fields__}


def test_a_late_delivery_wins_over_an_abandon() -> None:
    s = run([claim(1)])
    gone = decide(s, DeliveryPolicy(in_doubt="abandon"), 20 * S)
    assert isinstance(gone, Append)
    s = fold(s, gone.payload, s.version + 1, 0)
    assert s.state == "abandoned"
    late = after_send(
        s, 1, Delivered(http_status=200, receipt="r", latency_us=1), DeliveryPolicy(), 0, 0
    )
    s = fold(s, late[0], s.version + 1, 0)
    assert (s.state, s.receipt) == ("delivered", "r")


def test_requeue_gives_a_fresh_budget_and_keeps_the_doubt() -> None:
    s = run([claim(1)])
    s = fold(s, NotifyRequeued(notification_id=REQ.notification_id), s.version + 1, 0)
    assert (s.state, s.spent, s.in_doubt_now) == ("pending", 0, True)
    assert decide(s, DeliveryPolicy(in_doubt="abandon"), 0) == Claim(2, after_in_doubt=True)


@given(st.integers(1, 40), st.floats(0, 1), st.none() | st.integers(0, 10**9))
def test_backoff_stays_between_the_providers_wait_and_the_cap(
    spent: int, jitter: float, retry_after_ms: int | None
) -> None:
    policy = DeliveryPolicy(backoff_s=2, max_delay_s=900)
    d = delay_s(spent, policy, jitter, retry_after_ms)
    assert 0 < d <= 900
    assert d >= min(900, (retry_after_ms or 0) / 1000)
    assert d >= min(900, 2 * 2 ** min(60, spent - 1)) / 2


OUTCOMES = st.sampled_from(["ok", "429", "400", "500", "timeout", "reset", "crash"])


def outcome_of(kind: str) -> Delivered | Failed:
    if kind == "ok":
        return Delivered(http_status=200, receipt="r", latency_us=1)
    cls = {"429": "rate_limited", "400": "rejected", "500": "rejected", "timeout": "timeout",
           "reset": "transport"}[kind]  # fmt: skip
    return Failed(failure_class=cls, retryable=kind != "400", error=kind, latency_us=1,  # type: ignore[arg-type]
                  retry_after_ms=1000 if kind == "429" else None,
                  in_doubt=kind in ("timeout", "reset"))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(OUTCOMES, min_size=1, max_size=30), st.sampled_from(["retry", "abandon"]),
       st.integers(1, 6))  # fmt: skip
def test_a_simulated_notifier_keeps_the_promises(
    script: list[str], in_doubt: str, max_attempts: int
) -> None:
    policy = DeliveryPolicy(in_doubt=in_doubt, max_attempts=max_attempts, lease_s=5)  # type: ignore[arg-type]
    s, now, sends, doubtful = start(REQ, 1, 0), 0, 0, False
    events: list[Payload] = []
    for kind in script:
        decision = decide(s, policy, now, claim_gone=True)
        if isinstance(decision, Wait):
            now = decision.until_us
            decision = decide(s, policy, now, claim_gone=True)
        if isinstance(decision, Done):
            break
        if isinstance(decision, Append):
            events.append(decision.payload)
            s = fold(s, decision.payload, s.version + 1, now)
            continue
        assert isinstance(decision, Claim)
        if in_doubt == "abandon":
            assert not doubtful, "an at-most-once channel sent after an outcome it could not see"
        assert decision.after_in_doubt == doubtful
        c = claim(decision.attempt, now + 5 * S, decision.after_in_doubt)
        s = fold(s, c, s.version + 1, now)
        events.append(c)
        sends += 1
        if kind == "crash":  # killed after the send, before the outcome
            doubtful = True
            now += 6 * S
            continue
        for p in after_send(s, c.attempt, outcome_of(kind), policy, now, 0.5):
            events.append(p)
            s = fold(s, p, s.version + 1, now)
        doubtful = kind in ("timeout", "reset")
        now += 1
    assert sends <= max_attempts
    claims = [e for e in events if isinstance(e, NotifyAttempted)]
    assert s.possible_duplicates == sum(c.after_in_doubt for c in claims)
    assert s.attempts == sends
    times = {"requested_us": 0, "updated_us": 0}
    assert {**_fields_of(run(events)), **times} == {**_fields_of(s), **times}  # one fold
