"""What every channel shares whatever carries its request: name, kind, floor and pace.

Each kind has its own defaults (upstream's timeouts, SMS's ``warn`` floor, the
provider's pace); ``notify.toml`` overrides any of them per channel through
:class:`ChannelOptions`.
"""

from __future__ import annotations

from typing import ClassVar, Final, TypeVar

from msgspec import Struct

from kei.domain.notify import SEVERITIES, Severity

T = TypeVar("T")

CONNECT_TIMEOUT_S: Final = 5.0
"""Seconds to open a connection (never more than the channel's whole timeout)."""


class ChannelOptions(Struct, frozen=True, kw_only=True):
    """Per-channel overrides; None keeps the kind's default."""

    timeout_s: float | None = None
    min_interval_s: float | None = None
    min_severity: Severity | None = None


def by_severity(info: T, success: T, warn: T, error: T) -> dict[Severity, T]:
    """One provider's form of each severity (colour, emoji, prefix), in severity order."""
    return dict(zip(SEVERITIES, (info, success, warn, error), strict=True))


class BaseChannel:
    """Name, kind, severity floor and pace of one configured channel (the read-only
    members of the Channel protocol; plain attributes but for the pace, which Discord
    computes)."""

    kind: ClassVar[str]
    default_timeout_s: ClassVar[float] = 30.0
    default_min_interval_s: ClassVar[float] = 1.0
    default_min_severity: ClassVar[Severity] = "info"

    def __init__(self, name: str, options: ChannelOptions) -> None:
        self.name = name
        self.timeout_s = options.timeout_s or self.default_timeout_s
        self.min_severity: Severity = options.min_severity or self.default_min_severity
        self._min_interval_s = (
            self.default_min_interval_s
            if options.min_interval_s is None
            else options.min_interval_s
        )

    @property
    def min_interval_s(self) -> float:
        return self._min_interval_s

    def __repr__(self) -> str:  # never the URL or token
        return f"<{type(self).__name__} {self.name!r}>"
