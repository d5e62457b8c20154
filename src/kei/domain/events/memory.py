"""Memory events: what an agent wrote to remember, forgot, or compacted away.

Upstream kei-memory overwrote rows in place (``INSERT OR REPLACE``), deleted them to
compact, and read ``tag_any`` as "all tags" (spec §9, §12). Here every write is an
event on the stream of its key, ``memory/<namespace>/<key>``; a later write to the key
is the value readers see, and the earlier ones stay in the log. Forgetting appends a
tombstone and compacting a cut-off time: the ``memory`` projection stops returning
what they name, and the history that says it once existed is still signed.

``redacted_by`` names the leak-matrix rules that replaced part of the value before it
was signed (the secret itself never reached the log); ``flagged_by`` the warn rules
that matched.
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.payload import Payload

MEMORY_STREAM_PREFIX: Final = "memory/"
DEFAULT_NAMESPACE: Final = "default"


class MemoryWritten(Payload, frozen=True, kw_only=True):
    """One value stored under ``namespace``/``key`` (upstream ``MemoryItem``)."""

    namespace: str
    key: str
    value: str
    kind: str = "note"
    tags: tuple[str, ...] = ()
    dna: str | None = None
    parent_dna: str | None = None
    redacted_by: tuple[str, ...] = ()
    flagged_by: tuple[str, ...] = ()


class MemoryForgotten(Payload, frozen=True, kw_only=True):
    """A tombstone: the key's value is no longer returned (until written again)."""

    namespace: str
    key: str
    reason: str = ""


class MemoryCompacted(Payload, frozen=True, kw_only=True):
    """Values of ``namespace`` written before ``before_us`` are no longer returned
    (upstream's ``compact(since)`` deleted them)."""

    namespace: str
    before_us: int


def memory_stream(namespace: str, key: str) -> str:
    """The stream of one key."""
    return f"{MEMORY_STREAM_PREFIX}{namespace}/{key}"


def compaction_stream(namespace: str) -> str:
    """The stream of a namespace's compactions."""
    return f"{MEMORY_STREAM_PREFIX}{namespace}"
