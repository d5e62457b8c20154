"""One notification as every channel receives it, and the order of severities.

Upstream's ``Notification`` carried a subject, a text body, an optional HTML body, a
severity and tags; its severities had no order, so ``min_severity`` was advisory and
nothing applied it. kei gives them one: info < success < warn < error.
"""

from __future__ import annotations

from typing import Final, Literal

from msgspec import Struct

Severity = Literal["info", "success", "warn", "error"]
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "success", "warn", "error")


def severity_rank(severity: Severity) -> int:
    """Position in :data:`SEVERITIES`, so a floor such as SMS's ``warn`` can be compared."""
    return SEVERITIES.index(severity)


class Notification(Struct, frozen=True, kw_only=True):
    """What to say: the channel formats it in its provider's shape (upstream's payloads)."""

    subject: str
    body_text: str
    severity: Severity = "info"
    body_html: str | None = None
    tags: tuple[str, ...] = ()
