"""One notification's state, folded from its stream ``notify/<id>``.

The notifier decides from this fold of the stream's checked rows (never from a read
model), and the ``notify_outbox`` read model keeps the same fold per notification, so
``kei notify list`` and the notifier can never disagree on what a stream means.

What the fold keeps, and why:

- ``state``: ``pending`` (requested or requeued, no open claim), ``claimed`` (an
  attempt without an outcome: in flight, or in doubt once its lease passed or its
  notifier is gone), ``retrying`` (the last attempt failed and may be retried after
  ``not_before_us``), and the ends ``delivered``, ``suppressed``, ``abandoned``.
- A delivery is the truth whenever it arrives: an outcome that names an older attempt
  (a slow notifier whose claim was given up on) still marks the notification delivered.
- ``possible_duplicates`` counts the claims marked ``after_in_doubt``: each is a send
  that may repeat one the provider already received. Every duplicate the policy
  allows is visible in the log this way.
"""

from __future__ import annotations

from typing import Final, Literal

from msgspec import Struct
from msgspec.structs import replace

from kei.domain.events import notify as ev
from kei.domain.events.payload import Payload

State = Literal["pending", "claimed", "retrying", "delivered", "suppressed", "abandoned"]
STATES: Final[tuple[State, ...]] = (
    "pending", "claimed", "retrying", "delivered", "suppressed", "abandoned",
)  # fmt: skip
TERMINAL: Final = frozenset({"delivered", "suppressed", "abandoned"})


class Claim(Struct, frozen=True, kw_only=True):
    """An attempt without an outcome yet."""

    attempt: int
    notifier: str
    lease_until_us: int


class NotificationState(Struct, frozen=True, kw_only=True):
    """The fold of one notification's stream; see the module docstring."""

    request: ev.NotifyRequested
    requested_us: int
    version: int
    state: State = "pending"
    attempts: int = 0
    budget_from: int = 0  # attempts before the last requeue: they do not count again
    claim: Claim | None = None
    last_in_doubt: bool = False  # the last attempt may have reached the provider unseen
    not_before_us: int | None = None
    last_class: str | None = None
    last_error: str = ""
    last_http_status: int | None = None
    receipt: str | None = None
    provider_status: str | None = None
    delivered_attempt: int | None = None
    end_reason: str | None = None
    possible_duplicates: int = 0
    updated_us: int = 0

    @property
    def notification_id(self) -> str:
        return self.request.notification_id

    @property
    def spent(self) -> int:
        """Attempts counted against the budget (those since the last requeue)."""
        return self.attempts - self.budget_from

    @property
    def in_doubt_now(self) -> bool:
        """Would the next claim follow an attempt that may have delivered?"""
        return self.claim is not None or self.last_in_doubt


def start(request: ev.NotifyRequested, version: int, ts_us: int) -> NotificationState:
    """The state right after the request (normally version 1)."""
    return NotificationState(request=request, requested_us=ts_us, version=version, updated_us=ts_us)


def fold(state: NotificationState, payload: Payload, version: int, ts_us: int) -> NotificationState:
    """``state`` after one more event of its stream; unknown payloads change nothing
    but the version."""
    s = replace(state, version=version, updated_us=ts_us)
    match payload:
        case ev.NotifyAttempted():
            return _attempted(s, payload)
        case ev.NotifyDelivered():
            claim = None if _answers(s, payload.attempt) else s.claim
            return replace(
                s, state="delivered", claim=claim, delivered_attempt=payload.attempt,
                receipt=payload.receipt, provider_status=payload.provider_status,
                last_http_status=payload.http_status, end_reason=None,
            )  # fmt: skip
        case ev.NotifyFailed():
            return _failed(s, payload)
        case ev.NotifySuppressed():
            return replace(s, state="suppressed", end_reason=payload.reason)
        case ev.NotifyAbandoned():
            if s.state == "delivered":
                return s
            return replace(s, state="abandoned", claim=None, end_reason=payload.reason,
                           last_in_doubt=s.in_doubt_now)  # fmt: skip
        case ev.NotifyRequeued():
            if s.state in ("delivered", "pending"):
                return s
            return replace(s, state="pending", budget_from=s.attempts, claim=None,
                           last_in_doubt=s.in_doubt_now, not_before_us=None,
                           end_reason=None)  # fmt: skip
        case ev.NotifyReceipt():
            return replace(s, provider_status=payload.provider_status)
    return s


def _answers(s: NotificationState, attempt: int) -> bool:
    return s.claim is not None and s.claim.attempt == attempt


def _attempted(s: NotificationState, p: ev.NotifyAttempted) -> NotificationState:
    claim = Claim(attempt=p.attempt, notifier=p.notifier, lease_until_us=p.lease_until_us)
    state: State = "claimed" if s.state not in TERMINAL else s.state
    return replace(
        s, state=state, claim=claim, attempts=max(s.attempts, p.attempt), not_before_us=None,
        possible_duplicates=s.possible_duplicates + p.after_in_doubt,
    )  # fmt: skip


def _failed(s: NotificationState, p: ev.NotifyFailed) -> NotificationState:
    late = not _answers(s, p.attempt)  # an older attempt's outcome: the open claim stands
    s = replace(s, last_class=p.failure_class, last_error=p.error, last_http_status=p.http_status)
    if late or s.state in TERMINAL:
        return s
    return replace(
        s, state="retrying", claim=None, not_before_us=p.not_before_us,
        last_in_doubt=p.in_doubt,
    )  # fmt: skip


def fold_stream(events: list[tuple[Payload, int, int]]) -> NotificationState | None:
    """The state of a whole stream given as ``(payload, version, timestamp_us)`` in
    order; None when it does not start with a request."""
    if not events or not isinstance(events[0][0], ev.NotifyRequested):
        return None
    first, version, ts = events[0]
    assert isinstance(first, ev.NotifyRequested)
    state = start(first, version, ts)
    for payload, v, t in events[1:]:
        state = fold(state, payload, v, t)
    return state
