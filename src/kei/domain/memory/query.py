"""What a memory query asks for and the shape of an item it returns: one value for
every reader of the memory read model (SQL, and the Redis mirror)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

__all__ = ["Item", "MemoryQuery"]

Item = dict[str, Any]


class MemoryQuery(Struct, frozen=True):
    """Upstream's ``MemoryQuery``, with ``tag_all`` beside a ``tag_any`` that means any.
    ``namespace`` None searches every namespace."""

    namespace: str | None = None
    kind: str | None = None
    key_prefix: str | None = None
    tag_any: tuple[str, ...] = ()
    tag_all: tuple[str, ...] = ()
    since_us: int | None = None
    limit: int | None = None
