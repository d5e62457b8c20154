"""Any other service, through apprise (the optional extra ``kei[apprise]``).

One ``apprise.Apprise`` object holds the channel's one URL (``mailto://``, ``ntfy://``,
``matrix://``, ``json://``...). apprise answers a send with one boolean and no reason,
keeps no receipt and retries only as its URL says, so this channel reports what it
can: a delivery with an empty receipt and HTTP status 0 (apprise does not say), or a
failure of class ``rejected`` that a retry may fix and that is in doubt (kei cannot
tell whether the service got it). kei adds apprise's own timeouts to the URL (``cto``
connect, ``rto`` read) from ``timeout_s`` unless the URL sets them. apprise paces its
own plugins, so ``min_interval_s`` defaults to 0. ``request_bytes`` is what kei hands
apprise (title, body and type as JSON), not what apprise sends. apprise is imported
only when such a channel is built, and its text never reaches an error: apprise logs
the URLs it uses.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlsplit

from kei.adapters.notify.base import CONNECT_TIMEOUT_S, BaseChannel, ChannelOptions, by_severity
from kei.adapters.notify.http import json_bytes
from kei.adapters.notify.text import clean
from kei.domain.notify import Delivered, Failed, Notification, SendOutcome

if TYPE_CHECKING:
    import apprise

NOTIFY_TYPES: Final = by_severity("info", "success", "warning", "failure")
MISSING: Final = "apprise is not installed: pip install 'kei[apprise]'"


def with_timeouts(url: str, timeout_s: float) -> str:
    """``url`` with apprise's ``cto``/``rto`` timeouts added where it sets none."""
    query = {k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    extra = [
        f"{key}={value:g}"
        for key, value in (("cto", min(CONNECT_TIMEOUT_S, timeout_s)), ("rto", timeout_s))
        if key not in query
    ]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


class AppriseChannel(BaseChannel):
    """One apprise URL. Raises ValueError (never naming the URL) when apprise is not
    installed or cannot use the URL."""

    kind = "apprise"
    default_min_interval_s = 0.0

    def __init__(self, name: str, url: str, options: ChannelOptions = ChannelOptions()) -> None:
        super().__init__(name, options)
        try:
            import apprise
        except ImportError as exc:
            raise ValueError(MISSING) from exc
        self._apprise: apprise.Apprise = apprise.Apprise()
        if not self._apprise.add(with_timeouts(url, self.timeout_s)):
            raise ValueError("apprise does not accept this URL (see apprise's list of services)")

    def request_bytes(self, notification: Notification) -> bytes:
        return json_bytes(
            {
                "title": clean(notification.subject),
                "body": clean(notification.body_text),
                "type": NOTIFY_TYPES[notification.severity],
            }
        )

    def send(self, notification: Notification) -> SendOutcome:
        start = time.perf_counter_ns()
        try:
            sent = bool(
                self._apprise.notify(
                    body=clean(notification.body_text),
                    title=clean(notification.subject),
                    notify_type=NOTIFY_TYPES[notification.severity],
                )
            )
        except Exception:  # a third-party plugin: whatever it raises is one failure
            sent = False
        latency_us = (time.perf_counter_ns() - start) // 1000
        if sent:
            return Delivered(http_status=0, receipt="", latency_us=latency_us)
        return Failed(
            failure_class="rejected",
            retryable=True,
            error=f"apprise channel {self.name!r}: the service did not take the "
            "notification (apprise gives no reason; its log has details)",
            latency_us=latency_us,
            in_doubt=True,
        )

    def close(self) -> None:
        self._apprise.clear()
