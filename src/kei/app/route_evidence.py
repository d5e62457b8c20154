"""What the router decides from: outcome counts per (model, task class).

Two sources, one shape (``kei.domain.routing.select``'s ``Evidence``):

- ``TableEvidence`` reads the ``posteriors`` read model in plain SQL on the store's
  connection: what ``kei route select`` uses once the projection is caught up. A
  class's counts are one primary-key probe; a model's classes (kernel smoothing, only
  for a class the model has no outcome for) are read once per model and kept for the
  life of the object, which a service makes per decision.
- ``FoldedEvidence`` folds ``route.outcome`` events itself: what ``kei route explain``
  uses to see the log exactly as it stood before a decision's position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from kei.adapters.store.base import EventStore
from kei.domain.events.routing import RouteOutcome
from kei.projections import names
from kei.projections.posteriors import is_success

Counts = tuple[int, int]


class TableEvidence:
    """Counts from ``posteriors_counts`` (caught up by the caller)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._classes: dict[str, dict[str, Counts]] = {}

    def counts(self, task_class: str, model: str) -> Counts:
        if model in self._classes:
            return self._classes[model].get(task_class, (0, 0))
        sql = (
            f"SELECT successes, failures FROM {names.POSTERIORS_TABLE} "
            "WHERE model = ? AND task_class = ?"
        )
        found = self._store.select(sql, [model, task_class])
        return (int(found[0][0]), int(found[0][1])) if found else (0, 0)

    def classes(self, model: str) -> Mapping[str, Counts]:
        if model not in self._classes:
            sql = (
                f"SELECT task_class, successes, failures FROM {names.POSTERIORS_TABLE} "
                "WHERE model = ?"
            )
            rows = self._store.select(sql, [model])
            self._classes[model] = {tc: (int(s), int(f)) for tc, s, f in rows}
        return self._classes[model]


class FoldedEvidence:
    """Counts folded from outcome events, in memory."""

    def __init__(self, outcomes: Iterable[RouteOutcome]) -> None:
        wins, losses = Counter[tuple[str, str]](), Counter[tuple[str, str]]()
        for o in outcomes:
            (wins if is_success(o) else losses)[(o.model, o.task_class)] += 1
        self._by_model: dict[str, dict[str, Counts]] = {}
        for model, tc in wins.keys() | losses.keys():
            self._by_model.setdefault(model, {})[tc] = (wins[(model, tc)], losses[(model, tc)])

    def counts(self, task_class: str, model: str) -> Counts:
        return self._by_model.get(model, {}).get(task_class, (0, 0))

    def classes(self, model: str) -> Mapping[str, Counts]:
        return self._by_model.get(model, {})
