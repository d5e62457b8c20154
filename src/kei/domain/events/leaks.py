"""The record of what the leak matrix did to an event that has no field of its own for
it (``memory.written`` carries ``redacted_by`` and ``flagged_by`` itself).

Appended in the same batch, and so the same transaction, as the event it describes, on
stream ``kei.leaks``: which stream and type the event had, which of its fields were
redacted or flagged, and by which rules. The secret itself never reaches the log.
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.payload import Payload

LEAKS_STREAM: Final = "kei.leaks"


class LeakNoted(Payload, frozen=True, kw_only=True):
    """Rules that redacted (``substitute``) or flagged (``warn``) fields of one event."""

    stream: str
    event_type: str
    fields: tuple[str, ...]
    redacted_by: tuple[str, ...] = ()
    flagged_by: tuple[str, ...] = ()
