"""What a notifier does next with one notification, and what it appends after a send.

Pure: the caller passes the time, a jitter draw in [0, 1) and whether the open claim's
notifier process is known to be gone, so every decision can be replayed in a test.

In-doubt policy (``docs/notify.md``): a claim without an outcome, once its lease has
passed or its notifier is gone, may or may not have reached the provider. None of the
four providers offers an idempotency key on these endpoints, so the choice is:

- ``retry`` (at-least-once, the default for chat channels): send again; the new claim
  carries ``after_in_doubt``, so the possible duplicate is in the log;
- ``abandon`` (at-most-once, the default for SMS, which is metered and can page
  someone twice): append ``notify.abandoned`` with reason ``in_doubt``.

A failure the channel says may have delivered (``in_doubt``: no answer after the request
went out, a connection reset after it) is treated the same way.
Retries back off exponentially with "equal jitter" (half the step fixed, half drawn),
never sooner than the provider's ``retry_after`` and never later than ``max_delay_s``.
"""

from __future__ import annotations

from typing import Final, Literal

from msgspec import Struct

from kei.domain.events.notify import (
    AbandonReason,
    NotifyAbandoned,
    NotifyDelivered,
    NotifyFailed,
    NotifySuppressed,
)
from kei.domain.events.payload import Payload
from kei.domain.notify.clip import clip_id, clip_text
from kei.domain.notify.message import Severity, severity_rank
from kei.domain.notify.outcome import Delivered, SendOutcome
from kei.domain.notify.state import TERMINAL, NotificationState

InDoubt = Literal["retry", "abandon"]
IN_DOUBT_CHOICES: Final[tuple[InDoubt, ...]] = ("retry", "abandon")
AT_MOST_ONCE_KINDS: Final = frozenset({"sms"})


def default_in_doubt(kind: str) -> InDoubt:
    """At-most-once for metered kinds (SMS), at-least-once for chat."""
    return "abandon" if kind in AT_MOST_ONCE_KINDS else "retry"


class DeliveryPolicy(Struct, frozen=True, kw_only=True):
    """How one channel's notifications are retried; ``min_severity`` is the channel's."""

    in_doubt: InDoubt = "retry"
    max_attempts: int = 8
    backoff_s: float = 2.0
    max_delay_s: float = 900.0
    lease_s: float = 60.0
    min_severity: Severity = "info"


class Claim(Struct, frozen=True):
    """Send attempt ``attempt`` now (claim it first)."""

    attempt: int
    after_in_doubt: bool


class Append(Struct, frozen=True):
    """End or skip the notification with this event, sending nothing."""

    payload: Payload


class Wait(Struct, frozen=True):
    """Nothing to do before ``until_us``."""

    until_us: int


class Done(Struct, frozen=True):
    """Nothing left to do."""


Decision = Claim | Append | Wait | Done


def decide(
    s: NotificationState, policy: DeliveryPolicy, now_us: int, *, claim_gone: bool = False
) -> Decision:
    """The next step for ``s`` at ``now_us``; ``claim_gone``: the open claim's notifier
    is known to have died (same machine, its process is gone)."""
    nid = s.notification_id
    if s.state in TERMINAL:
        return Done()
    if s.claim is not None:
        if now_us < s.claim.lease_until_us and not claim_gone:
            return Wait(s.claim.lease_until_us)
        if policy.in_doubt == "abandon":
            return Append(NotifyAbandoned(notification_id=nid, reason="in_doubt",
                                          attempt=s.claim.attempt))  # fmt: skip
    expiry = s.request.not_after_us
    if expiry is not None and now_us > expiry:
        if s.attempts == 0:
            return Append(NotifySuppressed(notification_id=nid, reason="expired"))
        return Append(NotifyAbandoned(notification_id=nid, reason="expired", attempt=s.attempts))
    if s.attempts == 0 and severity_rank(s.request.severity) < severity_rank(policy.min_severity):
        return Append(NotifySuppressed(notification_id=nid, reason="below_min_severity"))
    if s.spent >= policy.max_attempts:
        return Append(NotifyAbandoned(notification_id=nid, reason="max_attempts",
                                      attempt=s.attempts))  # fmt: skip
    if s.claim is None and s.not_before_us is not None and now_us < s.not_before_us:
        return Wait(s.not_before_us)
    return Claim(s.attempts + 1, s.in_doubt_now)


def after_send(
    s: NotificationState,
    attempt: int,
    outcome: SendOutcome,
    policy: DeliveryPolicy,
    now_us: int,
    jitter: float,
) -> list[Payload]:
    """The events that record attempt ``attempt``'s outcome (a failure, then maybe the
    end of the notification), appended in one batch."""
    nid = s.notification_id
    if isinstance(outcome, Delivered):
        return [
            NotifyDelivered(
                notification_id=nid, attempt=attempt, http_status=max(0, outcome.http_status),
                receipt=clip_id(outcome.receipt) or "",
                provider_status=clip_id(outcome.provider_status),
                latency_us=max(0, outcome.latency_us),
            )
        ]  # fmt: skip
    spent = attempt - s.budget_from
    end: AbandonReason | None = None
    not_before: int | None = None
    if not outcome.retryable:
        end = "not_retryable"
    elif outcome.in_doubt and policy.in_doubt == "abandon":
        end = "in_doubt"
    elif spent >= policy.max_attempts:
        end = "max_attempts"
    else:
        not_before = now_us + int(delay_s(spent, policy, jitter, outcome.retry_after_ms) * 1e6)
        expiry = s.request.not_after_us
        if expiry is not None and not_before > expiry:
            end, not_before = "expired", None
    failed = NotifyFailed(
        notification_id=nid, attempt=attempt, failure_class=outcome.failure_class,
        retryable=outcome.retryable, error=clip_text(outcome.error),
        http_status=outcome.http_status if (outcome.http_status or 0) > 0 else None,
        retry_after_ms=None if outcome.retry_after_ms is None else max(0, outcome.retry_after_ms),
        retry_after_raw=clip_id(outcome.retry_after_raw),
        provider_code=clip_id(outcome.provider_code), in_doubt=outcome.in_doubt,
        not_before_us=not_before,
        latency_us=max(0, outcome.latency_us),
    )  # fmt: skip
    if end is None:
        return [failed]
    return [failed, NotifyAbandoned(notification_id=nid, reason=end, attempt=attempt)]


def delay_s(spent: int, policy: DeliveryPolicy, jitter: float, retry_after_ms: int | None) -> float:
    """Seconds before the next attempt after ``spent`` attempts of the budget: the
    exponential step with equal jitter, at least the provider's wait, at most the cap."""
    step = min(policy.max_delay_s, policy.backoff_s * 2.0 ** min(60, max(0, spent - 1)))
    wait = step * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))
    if retry_after_ms is not None:
        wait = max(wait, retry_after_ms / 1000)
    return min(wait, policy.max_delay_s)
