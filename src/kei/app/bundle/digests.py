"""Projection digests at a head: what a replay into an empty store must rebuild.

- ``HeadView`` is a read-only log for the projection engine, stitched from a lower
  store (positions up to ``split``) and an upper one (positions after it), and
  capped at ``head``: export uses it to read its own store only up to the head it
  bundles; replay uses it to read the target's log up to where the bundle takes over.
- ``rebuild_digests`` replays a view into fresh projection tables in a scratch
  database (SQLite, thrown away by the caller) and returns every digest.
- ``Rebuild`` does the same for a replay, which folds the bundle's rows as it reads
  them, before a single row of the bundle is committed.
- ``log_digests`` is what export signs: every projection folded from the store's
  log up to the head into a scratch database. It never reads the store's own
  read-model tables (which anyone with write access could have edited) and never
  writes into the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from kei.adapters.store.base import PAGE, EventStore
from kei.app.bundle.manifest import ProjectionDigest
from kei.domain.log.records import StoredRecord


class HeadView:
    """``lower`` up to position ``split``, then ``upper`` after it, both up to ``head``."""

    def __init__(
        self, lower: EventStore | None, split: int, upper: EventStore | None, head: int
    ) -> None:
        self.lower, self.split, self.upper, self.head = lower, split, upper, head
        source = upper or lower
        self.url = "bundle" if source is None else source.url

    def read(
        self, *, after: int = 0, limit: int = PAGE, upto: int | None = None
    ) -> list[StoredRecord]:
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
        (ProjectionDigest(s.name, s.version, s.digest_text) for s in statuses),
        key=lambda d: d.name,
    )


def rebuild_digests(view: HeadView, scratch_url: str) -> list[ProjectionDigest]:
    """Every shipped projection rebuilt from ``view`` into ``scratch_url``; their digests."""
    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.projections.registry import default_projections

    engine = ProjectionEngine(scratch_url, view.as_store(), default_projections(), scratch=True)
    try:
        return _digests(engine.status())
    finally:
        engine.close()


class Rebuild:
    """Every shipped projection rebuilt in ``scratch_url`` for a replay: the target's
    log up to ``split`` (``lower``, None for an empty store) caught up as usual, then
    the bundle's rows after it folded as the replay reads them (``fold``)."""

    def __init__(self, scratch_url: str, lower: EventStore | None, split: int) -> None:
        from kei.adapters.readmodels.engine import ProjectionEngine
        from kei.projections.registry import default_projections

        view = HeadView(lower, split, None, split)
        self._engine = ProjectionEngine(
            scratch_url, view.as_store(), default_projections(), scratch=True
        )
        try:
            self._engine.catch_up()
        except BaseException:
            self._engine.close()
            raise

    def fold(self, records: list[StoredRecord]) -> None:
        """Fold the next records (see ``ProjectionEngine.apply_checked``)."""
        self._engine.apply_checked(records)

    def digests(self) -> list[ProjectionDigest]:
        """Every projection's digest, once its deferred indexes are built."""
        return _digests(self._engine.status())

    def close(self) -> None:
        self._engine.close()


def log_digests(store: EventStore, head: int, scratch_url: str) -> list[ProjectionDigest]:
    """Every shipped projection folded from ``store``'s log up to ``head`` into the
    scratch database ``scratch_url`` (thrown away by the caller); their digests."""
    return rebuild_digests(HeadView(store, head, None, head), scratch_url)
