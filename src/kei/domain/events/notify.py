"""Notifications as events: every request, claim and outcome of a send, on its own stream.

One stream per notification, ``notify/<notification_id>``, whose first event is its
``notify.requested`` (appended at ``expected_version=0``). The id is derived, never
drawn: the SHA-256 of the rule and the trigger's signed ``stream:version``
(``kei.domain.notify.ids``), so a replay, a restart or a second follower that sees the
same trigger computes the same stream and its append is refused, and no trigger is ever
requested twice. A notifier claims a send by appending ``notify.attempted`` at the
stream's current version: two notifiers on two hosts cannot both claim one attempt.
The outcome of each attempt (``delivered``, ``failed``) names the attempt it answers;
``abandoned`` and ``suppressed`` end a notification without (another) send. A claim
without an outcome is in doubt, visible here for ever; ``after_in_doubt`` on the next
claim marks a send that may repeat one the provider already received.

Secrets never enter these events: URLs, tokens and SIDs are channel configuration.
Subjects, bodies and error texts are free text the leak matrix scans before signing.
"""

from __future__ import annotations

from typing import Final, Literal

from kei.domain.events.payload import Payload
from kei.domain.notify.message import Severity
from kei.domain.notify.outcome import FailureClass

NOTIFY_STREAM_PREFIX: Final = "notify/"
NOTIFY_TYPES: Final = frozenset(
    f"notify.{step}"
    for step in (
        "requested", "attempted", "delivered", "failed", "suppressed", "abandoned", "requeued",
        "receipt",
    )
)  # fmt: skip
"""The type names, registered in ``registry.py`` as ``notify.<step>``."""

Cause = Literal["event", "verify", "stalled", "send", "test"]
"""What asked for a notification: a rule matching a logged event, a rule's scheduled
``verify-chain``, a rule's stalled-agent check, ``kei notify send`` or ``kei notify test``."""
SuppressReason = Literal["below_min_severity", "expired"]
AbandonReason = Literal["max_attempts", "expired", "not_retryable", "in_doubt"]


def notify_stream(notification_id: str) -> str:
    return f"{NOTIFY_STREAM_PREFIX}{notification_id}"


class NotifyRequested(Payload, frozen=True, kw_only=True):
    """What to tell whom, and why: version 1 of ``notify/<notification_id>``.

    ``trigger_stream``/``trigger_version`` name the logged event a rule matched by its
    signed coordinates (for ``stalled``: the agent's last event), never by position.
    ``not_after_us``: past it, the notification is given up rather than sent late.
    """

    notification_id: str
    cause: Cause
    rule_id: str | None = None
    channel: str
    channel_kind: str
    severity: Severity
    subject: str
    body_text: str = ""
    tags: tuple[str, ...] = ()
    trigger_type: str | None = None
    trigger_stream: str | None = None
    trigger_version: int | None = None
    not_after_us: int | None = None


class NotifyAttempted(Payload, frozen=True, kw_only=True):
    """A claim: ``notifier`` will send attempt ``attempt`` now; appended at the stream's
    current version, so no other notifier claims it too. ``request_sha256`` is the
    SHA-256 of the exact bytes the channel sends (the bytes themselves are not kept).
    ``lease_until_us``: after it, a claim without an outcome is in doubt even if its
    notifier may still run. ``after_in_doubt``: the previous attempt has no outcome, or
    failed in a way that may have delivered: this send may be a duplicate."""

    notification_id: str
    attempt: int
    notifier: str
    request_sha256: str
    lease_until_us: int
    after_in_doubt: bool = False


class NotifyDelivered(Payload, frozen=True, kw_only=True):
    """The provider accepted attempt ``attempt``; ``receipt`` is its id for the message
    ("" where it gives none, Slack)."""

    notification_id: str
    attempt: int
    http_status: int
    receipt: str = ""
    provider_status: str | None = None
    latency_us: int


class NotifyFailed(Payload, frozen=True, kw_only=True):
    """Attempt ``attempt`` did not land, or may not have: ``in_doubt`` (no answer after the
    request went out, a reset after it: the provider may have the message).
    ``not_before_us``: the earliest next attempt (None: there will be none).
    ``retry_after_ms`` the provider's wait as honoured, ``retry_after_raw`` as it said it."""

    notification_id: str
    attempt: int
    failure_class: FailureClass
    retryable: bool
    error: str = ""
    http_status: int | None = None
    retry_after_ms: int | None = None
    retry_after_raw: str | None = None
    provider_code: str | None = None
    in_doubt: bool = False
    not_before_us: int | None = None
    latency_us: int


class NotifySuppressed(Payload, frozen=True, kw_only=True):
    """Not sent, by rule: below the channel's floor (SMS: warn), or expired unsent."""

    notification_id: str
    reason: SuppressReason


class NotifyAbandoned(Payload, frozen=True, kw_only=True):
    """Given up after ``attempt`` (None: before any): too many attempts, expired, a
    failure no retry can fix, or a claim in doubt on an at-most-once channel."""

    notification_id: str
    reason: AbandonReason
    attempt: int | None = None


class NotifyRequeued(Payload, frozen=True, kw_only=True):
    """``kei notify retry``: an abandoned or waiting notification made due again, with
    a fresh budget of attempts. Its earlier attempts stay in the stream."""

    notification_id: str
    reason: str = ""


class NotifyReceipt(Payload, frozen=True, kw_only=True):
    """A later word from the provider about a delivered message (a Twilio status
    callback whose signature checked): its status, and the provider's error code."""

    notification_id: str
    receipt: str
    provider_status: str
    provider_code: str | None = None
