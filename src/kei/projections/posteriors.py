"""``posteriors``: per (model, task class), how often routed work succeeded first time.

What ``kei route select`` weighs and ``kei posterior show`` prints. It folds
``route.outcome`` events with upstream's rule (spec §4.2): a success is a
``functional`` outcome at escalation depth 0; every other outcome, including a
functional one reached only after escalating, is a failure. Models are catalog ids,
resolved before the outcome was appended, so an alias counts as its model here as
everywhere. The Beta posterior itself, Beta(1 + successes, 1 + failures), is computed
by the reader (``kei.domain.routing.posterior``): the table keeps exact integer counts.

Table ``posteriors_counts``, primary key ``(model, task_class)`` so that the classes a
model has evidence for (kernel smoothing) are one key range: ``successes``,
``failures``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from sqlalchemy import BigInteger, String

from kei.domain.events.routing import RouteOutcome
from kei.domain.log.recorded import RecordedEvent
from kei.projections import names
from kei.projections.base import KEY, NEEDED, PagedTable, upsert_add

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

ROUTE_OUTCOME: Final = "route.outcome"


def is_success(outcome: RouteOutcome) -> bool:
    """Upstream's success: functional, first pass."""
    return outcome.outcome == "functional" and outcome.escalation_depth == 0


class Posteriors(PagedTable):
    """Outcome counts per model and task class; see the module docstring."""

    version = names.POSTERIORS_VERSION
    event_types = frozenset({ROUTE_OUTCOME})
    suffix = "counts"
    columns = (
        ("model", String, KEY), ("task_class", String, KEY),
        ("successes", BigInteger, NEEDED), ("failures", BigInteger, NEEDED),
    )  # fmt: skip

    def __init__(self, name: str = names.POSTERIORS) -> None:
        self.name = name

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        wins, losses = Counter[tuple[str, str]](), Counter[tuple[str, str]]()
        for event in events:
            payload = event.payload()
            if not isinstance(payload, RouteOutcome):  # the registry maps the type
                raise TypeError(f"{event.type} at position {event.position} is not an outcome")
            key = (payload.model, payload.task_class)
            (wins if is_success(payload) else losses)[key] += 1
        rows = [
            {"model": m, "task_class": tc, "successes": wins[(m, tc)], "failures": losses[(m, tc)]}
            for m, tc in sorted(wins.keys() | losses.keys())
        ]
        upsert_add(conn, self.table, rows, add=("successes", "failures"))
