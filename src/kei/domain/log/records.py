"""The raw, unverified shape of one stored log entry, as a store hands it over."""

from __future__ import annotations

import msgspec


class StoredRecord(msgspec.Struct, frozen=True):
    """One event row joined with its chain row; nothing in it has been checked.

    ``seq``, ``prev_hash`` and ``hash`` are None when the event has no chain entry; a
    store says so explicitly (no defaults), so a record built without its chain columns
    cannot pass for an unchained one by omission.
    A msgspec Struct, not a dataclass: stores build one per event read, and a
    Struct is several times cheaper to construct than a frozen dataclass.
    """

    position: int
    stream: str
    version: int
    type: str
    state: bytes
    seq: int | None
    prev_hash: bytes | None
    hash: bytes | None
