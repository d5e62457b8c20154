"""What one send attempt came to, as a channel reports it.

A channel never raises for a provider's answer or a network fault: it returns
:class:`Delivered` with the provider's receipt, or :class:`Failed` saying whether a
retry can help and when. ``error`` must never contain a webhook URL, token or SID; the
channel scrubs it and the leak matrix checks it again before it is signed.
"""

from __future__ import annotations

from typing import Final, Literal

from msgspec import Struct

FailureClass = Literal["transport", "timeout", "rate_limited", "rejected", "auth"]
FAILURE_CLASSES: Final[tuple[FailureClass, ...]] = (
    "transport",
    "timeout",
    "rate_limited",
    "rejected",
    "auth",
)


class Delivered(Struct, frozen=True, kw_only=True):
    """The provider accepted the message; ``receipt`` is its id for it (Discord message
    id with ``?wait=true``, Telegram ``message_id``, Twilio ``sid``), or "" for Slack."""

    http_status: int
    receipt: str
    latency_us: int
    provider_status: str | None = None


class Failed(Struct, frozen=True, kw_only=True):
    """The send did not land (or may not have: ``timeout`` and ``transport`` after the
    request was written are in doubt, and say so in ``in_doubt``: an at-most-once
    channel must not send those again). ``retry_after_ms`` is the provider's wait,
    capped; ``retry_after_raw`` keeps what it said."""

    failure_class: FailureClass
    retryable: bool
    error: str
    latency_us: int
    http_status: int | None = None
    retry_after_ms: int | None = None
    retry_after_raw: str | None = None
    provider_code: str | None = None
    in_doubt: bool = False


SendOutcome = Delivered | Failed
