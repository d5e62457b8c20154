"""What a provider's answer or a network fault means for the notifier.

Upstream treated every non-success alike: a 429 was an ordinary failure, and the waits
providers ask for (Slack's ``Retry-After`` header, Telegram's ``parameters.retry_after``,
Discord's ``retry_after``) were thrown away. Here each answer becomes a failure class
and a "can a retry help" flag, and a provider's wait (from any failed answer: a 503 may
carry ``Retry-After`` too) is read in seconds (a float is fine; an HTTP date too),
capped at :data:`RETRY_AFTER_CAP_MS` like hikari does (Discord has answered "retry
after 2 days"), with the raw value kept beside it.

=========================  ================  =========
answer                     class             retryable
=========================  ================  =========
429                        ``rate_limited``  yes
401, 403                   ``auth``          no
408                        ``timeout``       yes
5xx                        ``rejected``      yes
any other non-success      ``rejected``      no
no answer in time          ``timeout``       yes
no connection, reset       ``transport``     yes
=========================  ================  =========
"""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from kei.domain.notify import FailureClass

RETRY_AFTER_CAP_MS: Final = 60_000
RAW_LIMIT: Final = 64


def classify_status(status: int) -> tuple[FailureClass, bool]:
    """The failure class of an HTTP answer that is not a success, and if a retry helps."""
    if status == 429:
        return "rate_limited", True
    if status in (401, 403):
        return "auth", False
    if status == 408:
        return "timeout", True
    return "rejected", status >= 500


def retry_after_ms(raw: object, *, now_s: float | None = None) -> int | None:
    """A provider's wait in milliseconds, capped at :data:`RETRY_AFTER_CAP_MS`: ``raw``
    is seconds (int, float or their text) or an HTTP date; None when it is neither."""
    if isinstance(raw, bool) or raw is None:
        return None
    seconds: float
    if isinstance(raw, int):
        seconds = float(min(max(raw, 0), RETRY_AFTER_CAP_MS))  # a huge int overflows float
    elif isinstance(raw, float):
        seconds = raw
    elif isinstance(raw, str):
        try:
            seconds = float(raw.strip())
        except ValueError:
            seconds = _seconds_until(raw, time.time() if now_s is None else now_s)
    else:
        return None
    if math.isnan(seconds):
        return None
    return math.ceil(min(max(seconds, 0.0), RETRY_AFTER_CAP_MS / 1000) * 1000)


def _seconds_until(date: str, now_s: float) -> float:
    try:
        when = parsedate_to_datetime(date.strip())
    except (TypeError, ValueError, IndexError):
        return math.nan
    if when.tzinfo is None:  # an HTTP date is always GMT
        return math.nan
    return when.timestamp() - now_s


def raw_text(raw: object) -> str | None:
    """The provider's own retry-after value as text, bounded (kept beside the cap)."""
    if raw is None or isinstance(raw, bool):
        return None
    return str(raw)[:RAW_LIMIT]


def transport_failure(exc: Exception) -> tuple[FailureClass, str, bool]:
    """``(class, what happened, in doubt)`` for a network fault. Built from the
    exception's *class* only: httpx's text names the URL, which may be the secret.
    In doubt means the request may have reached the provider."""
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "timeout", f"no connection within the timeout ({name})", False
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", f"no answer within the timeout ({name})", True
    if isinstance(exc, httpx.ConnectError):
        return "transport", f"cannot connect ({name})", False
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | ValueError):
        return "transport", f"unusable address ({name})", False
    return "transport", f"connection failed after the request was sent ({name})", True
