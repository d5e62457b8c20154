"""Projection digests at a head: what a replay into an empty store must rebuild.

- ``HeadView`` is a read-only log for the projection engine, stitched from a lower
  store (positions up to ``split``) and an upper one (positions after it), and
  capped at ``head``: export uses it to read its own store only up to the head it
  bundles; replay uses it to read the target's log followed by the staged bundle,
  before a single row of the bundle is committed.
- ``rebuild_digests`` replays a view into fresh projection tables in a scratch
  database (SQLite, thrown away by the caller) and returns every digest.
- ``live_digests`` catches up the store's own projections and returns their
  digests when every one of them stands at the same position (the head); export
  takes that fast path and falls back to a rebuild when writers moved the log on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from kei.adapters.bundle.manifest import ProjectionDigest
from kei.adapters.store.base import PAGE, EventStore
from kei.domain.records import StoredRecord


class RebuildStoppedError(Exception):
    """Raised into a rebuild whose result is no longer wanted (``HeadView.stop``)."""


class HeadView:
    """``lower`` up to position ``split``, then ``upper`` after it, both up to ``head``."""

    def __init__(
        self, lower: EventStore | None, split: int, upper: EventStore | None, head: int
    ) -> None:
        self.lower, self.split, self.upper, self.head = lower, split, upper, head
        source = upper or lower
        self.url = "bundle" if source is None else source.url
        self.stop = threading.Event()

    def read(
        self, *, after: int = 0, limit: int = PAGE, upto: int | None = None
    ) -> list[StoredRecord]:
        if self.stop.is_set():
            raise RebuildStoppedError("the projection rebuild was stopped")
        top = self.head if upto is None else min(upto, self.head)
        if self.lower is not None and after < self.split:
            rows = self.lower.read(after=after, limit=limit, upto=min(top, self.split))
            if rows:
                return rows
        if self.upper is None or top <= max(after, self.split):
            return []
        return self.upper.read(after=max(after, self.split), limit=limit, upto=top)

    def as_store(self) -> EventStore:
        """This view where an ``EventStore`` is expected (the engine only reads)."""
        return cast(EventStore, self)


def _digests(statuses: Sequence[Any]) -> list[ProjectionDigest]:
    return sorted(
        (ProjectionDigest(s.name, s.version, "sha256:" + s.digest.hex()) for s in statuses),
        key=lambda d: d.name,
    )


def rebuild_digests(view: HeadView, scratch_url: str) -> list[ProjectionDigest]:
    """Every shipped projection rebuilt from ``view`` into ``scratch_url``; their digests."""
    from kei.adapters.projection_engine import ProjectionEngine
    from kei.projections.registry import default_projections

    engine = ProjectionEngine(scratch_url, view.as_store(), default_projections())
    try:
        return _digests(engine.status())
    finally:
        engine.close()


T = TypeVar("T")


def rebuild_alongside(
    view: HeadView, scratch_url: str, work: Callable[[], T]
) -> tuple[T, list[ProjectionDigest]]:
    """Run ``work`` (replay's verification) while a thread rebuilds the projections.

    Signature checks spend their time in libsodium, outside the GIL, so the rebuild
    overlaps them. Both must succeed; if ``work`` fails, the rebuild is stopped at
    its next read and ``work``'s error is the one raised.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kei-digests") as pool:
        future = pool.submit(rebuild_digests, view, scratch_url)
        try:
            result = work()
        except BaseException:
            view.stop.set()
            raise
        return result, future.result()


def live_digests(url: str, store: EventStore) -> tuple[int, list[ProjectionDigest]] | None:
    """The store's own projections, caught up: (their common position, digests), or
    None when they do not all stand at one position (the log moved meanwhile)."""
    from kei.adapters.projection_engine import ProjectionEngine
    from kei.projections.registry import default_projections

    engine = ProjectionEngine(url, store, default_projections())
    try:
        statuses = engine.status()
    finally:
        engine.close()
    positions = {s.position for s in statuses}
    if len(positions) != 1:
        return None
    return positions.pop(), _digests(statuses)
