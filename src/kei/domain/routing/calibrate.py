"""Calibrating the kernel weights against observed outcomes (spec §4.8).

Upstream kei-model-router's offline fit, kept: for each observation, predict its
success from every *other* observation of the same model, weighted by kernel
similarity (leave-one-out: ``α = 1 + Σ sim·[success]``, ``β = 1 + Σ sim·[fail]``,
``q̂ = α/(α+β)``), score weights by the mean squared error of those predictions,
and search upstream's 180-point grid. A grid point replaces the default weights
only if its MSE is strictly lower, so ties keep the defaults (and then the
earliest grid point). Fewer than 5 observations give the defaults and NaN MSEs.

Model names are compared exactly: the caller maps every alias of a model to one
catalog id before calling (upstream mapped them through ``from_slug``).

Observations that share a (task class, model) pair are interchangeable, so the
maths runs over those groups (``groups² × grid`` similarity products instead of
``n² × grid``). It is the same sum as upstream's loop, added in another order,
so an MSE can differ from upstream's in the last bits.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable
from typing import Final

from msgspec import Struct

from kei.domain.routing.kernel import Features, KernelWeights, features, weigh

__all__ = ["GRID", "MIN_OBSERVATIONS", "Calibration", "Observation", "calibrate"]

MIN_OBSERVATIONS: Final = 5
# Spec §4.8: upstream's grid, role outermost and body innermost (5 × 4 × 3 × 3 = 180).
GRID_ROLE: Final = (0.10, 0.25, 0.40, 0.55, 0.70)
GRID_CAPS: Final = (0.05, 0.15, 0.25, 0.35)
GRID_SCOPE: Final = (0.05, 0.15, 0.25)
GRID_BODY: Final = (0.0, 0.05, 0.10)
GRID: Final = tuple(
    KernelWeights(*w) for w in itertools.product(GRID_ROLE, GRID_CAPS, GRID_SCOPE, GRID_BODY)
)


class Observation(Struct, frozen=True):
    """One finished agent: its task class, model id, and clean first-pass success."""

    task_class: str
    model: str
    success: bool


class Calibration(Struct, frozen=True):
    """The best weights found, their MSE, the default weights' MSE, and how many rows."""

    weights: KernelWeights
    mse: float
    baseline_mse: float
    evaluated: int


class _Group(Struct, frozen=True):
    task_class: str
    model: str
    wins: int
    losses: int


def calibrate(
    observations: Iterable[Observation], grid: Iterable[KernelWeights] = GRID
) -> Calibration:
    """Upstream's leave-one-out grid search; see the module rules."""
    rows = list(observations)
    default = KernelWeights()
    if len(rows) < MIN_OBSERVATIONS:
        return Calibration(default, math.nan, math.nan, len(rows))
    groups = _groups(rows)
    pairs = {(g.task_class, h.task_class): features(g.task_class, h.task_class)
             for g in groups for h in groups if g.model == h.model}  # fmt: skip
    baseline = _mse(groups, pairs, default, len(rows))
    best, best_mse = default, baseline
    for w in grid:
        score = _mse(groups, pairs, w, len(rows))
        if score < best_mse:
            best, best_mse = w, score
    return Calibration(best, best_mse, baseline, len(rows))


def _groups(rows: list[Observation]) -> list[_Group]:
    tally = Counter((o.task_class, o.model, o.success) for o in rows)
    keys = sorted({(o.task_class, o.model) for o in rows})
    return [_Group(tc, m, tally[tc, m, True], tally[tc, m, False]) for tc, m in keys]


def _mse(
    groups: list[_Group],
    pairs: dict[tuple[str, str], Features],
    w: KernelWeights,
    total: int,
) -> float:
    """Mean squared LOO error; a row's own group counts itself out once."""
    squares = 0.0
    for g in groups:
        alpha, beta = 1.0, 1.0
        for h in groups:
            if h.model != g.model:
                continue
            sim = weigh(pairs[g.task_class, h.task_class], w)
            if sim > 0.0:
                alpha += sim * h.wins
                beta += sim * h.losses
        own = weigh(pairs[g.task_class, g.task_class], w)
        if g.wins:  # a success predicted without itself: drop one win of its own group
            q = (alpha - own) / (alpha - own + beta)
            squares += g.wins * (1.0 - q) ** 2
        if g.losses:
            q = alpha / (alpha + beta - own)
            squares += g.losses * q**2
    return squares / total
