"""The raw, unverified shape of one stored log entry, as a store hands it over."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One event row joined with its chain row; nothing in it has been checked.

    ``seq``, ``prev_hash`` and ``hash`` are None when the event has no chain entry.
    """

    position: int
    stream: str
    version: int
    type: str
    state: bytes
    seq: int | None = None
    prev_hash: bytes | None = None
    hash: bytes | None = None
