"""Escalation: which model to retry on after a failure (spec §4.5).

Two ladders, as upstream kei-model-router has:

- :func:`next_after_failure` walks the router's fixed ladder (cheapest first) one
  step per failure, at most :data:`MAX_ESCALATION_DEPTH` steps. A success, the
  depth ceiling, the top of the ladder or a model off the ladder all surrender.
  Ladder entries are model ids; the caller maps aliases to ids first.
- :func:`next_model` walks the catalog: the provider's models that are not
  deprecated, stable-sorted by output price ascending (kei-model's ``fallback``
  chain goes the other way, downwards). kei fixes two upstream weak points here:
  an alias and its id are the same model (spec §12.3/§12.4: upstream's Haiku id
  drift made ``next_model`` answer ``NotFound``), and only models priced in the
  current model's unit are compared, since a price per image is not comparable
  with a price per million tokens.

Example::

    >>> next_after_failure(("h", "s", "o"), "h", 0, True)
    Retry(model='s', depth=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from msgspec import Struct

from kei.domain.catalog.catalog import Catalog

__all__ = [
    "MAX_ESCALATION_DEPTH",
    "AtTop",
    "Escalation",
    "LadderStep",
    "Next",
    "NotFound",
    "Retry",
    "Surrender",
    "next_after_failure",
    "next_model",
]

MAX_ESCALATION_DEPTH: Final = 2  # spec §4.5: at most two retries above the first attempt


class Retry(Struct, frozen=True):
    """Retry on ``model``; ``depth`` is the escalation depth of that retry."""

    model: str
    depth: int


class Surrender(Struct, frozen=True):
    """Stop: success, ceiling reached, or no higher model."""


Escalation = Retry | Surrender


class Next(Struct, frozen=True):
    """The next dearer model of the provider, by id."""

    id: str


class AtTop(Struct, frozen=True):
    """The current model is the provider's dearest non-deprecated model."""


class NotFound(Struct, frozen=True):
    """The current model is unknown, deprecated or not the provider's."""


LadderStep = Next | AtTop | NotFound


def next_after_failure(
    ladder: Sequence[str], current: str, depth: int, is_failure: bool
) -> Escalation:
    """Upstream's rule: retry one rung up while failing and below the depth ceiling."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be a non-negative int, got {depth!r}")
    if not is_failure or depth >= MAX_ESCALATION_DEPTH or current not in ladder:
        return Surrender()
    rung = list(ladder).index(current) + 1
    if rung >= len(ladder):
        return Surrender()
    return Retry(ladder[rung], depth + 1)


def next_model(catalog: Catalog, current_id: str, provider: str) -> LadderStep:
    """The provider's next dearer model after ``current_id`` (an id or an alias)."""
    current = catalog.find(current_id)
    if current is None or current.provider != provider or current.status == "deprecated":
        return NotFound()
    rungs = sorted(
        (
            m
            for m in catalog.models
            if m.provider == provider
            and m.status != "deprecated"
            and m.pricing.unit == current.pricing.unit
        ),
        key=lambda m: m.pricing.output_per_mtok_micro,
    )
    index = [m.id for m in rungs].index(current.id)
    return Next(rungs[index + 1].id) if index + 1 < len(rungs) else AtTop()
