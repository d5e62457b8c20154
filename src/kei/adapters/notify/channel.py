"""The protocol every notification channel speaks.

A channel holds its configuration (URL, token, SID: secrets that never enter an event),
formats a :class:`~kei.domain.notify.Notification` exactly as upstream's
kei-notify-* did, sends it once with timeouts, and classifies the answer. It does not
retry or sleep: retries, rate limits across processes and the record of each attempt
belong to the notifier (``kei.app.notify``), which reads ``min_severity`` and
``request_bytes`` from here.
"""

from __future__ import annotations

from typing import Protocol

from kei.domain.notify import Notification, SendOutcome, Severity


class Channel(Protocol):
    """One configured destination, e.g. ``ops-slack`` of kind ``slack``."""

    @property
    def name(self) -> str:
        """The configured name, as rules and events refer to it."""
        ...

    @property
    def kind(self) -> str:
        """``slack``, ``discord``, ``telegram``, ``sms`` or ``apprise``."""
        ...

    @property
    def min_severity(self) -> Severity:
        """Below this the notifier suppresses instead of sending (SMS: ``warn``)."""
        ...

    @property
    def min_interval_s(self) -> float:
        """Seconds between two sends on this channel (its rate limit; 0 = none)."""
        ...

    def request_bytes(self, notification: Notification) -> bytes:
        """The exact body this channel would send, so its SHA-256 can be logged."""
        ...

    def send(self, notification: Notification) -> SendOutcome:
        """One attempt; never raises for a provider answer or a network fault."""
        ...

    def close(self) -> None:
        """Release the HTTP client."""
        ...
