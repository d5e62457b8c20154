"""The router's Beta posterior over one (task class, model) success rate (spec §4.2).

Upstream kei-model-router keeps ``Beta(1 + n⁺, 1 + n⁻)`` per task class and model
and calls a model good enough when a one-sided lower bound on its success rate
clears the quality threshold. Rules:

- The prior is Beta(1, 1): mean 0.5, and at δ = 0.10 a lower bound of about 0.130,
  so an unseen model is never trusted on faith.
- ``n⁺`` counts clean first-pass successes; everything else with an outcome is a
  failure, including a success reached only after escalation. That split is the
  caller's rule (it reads the ledger); here counts are just counts.
- The lower bound is ``clamp(mean − z(δ)·√var, 0, 1)``, a normal approximation
  with upstream's coarse z table. It is *not* a Wilson interval, whatever
  upstream's comment says; kei keeps the formula so its pinned numbers hold
  (5 clean successes → 0.699, 6 → 0.734 at δ = 0.10).
- :meth:`Beta.sample` draws from the posterior for Thompson sampling; with a
  seeded ``random.Random`` the draw can be re-derived exactly.

Example::

    >>> round(Beta.from_counts(6, 0).lower_bound(0.10), 3)
    0.734
"""

from __future__ import annotations

import math
import random
from typing import Final

from msgspec import Struct

__all__ = ["Z_TABLE", "Beta", "z_for"]

# Spec §4.2: one-sided z by δ, upstream's step table (δ ≤ bound → z); above 0.20, z = 0.
Z_TABLE: Final[tuple[tuple[float, float], ...]] = (
    (0.01, 2.326),
    (0.05, 1.645),
    (0.10, 1.282),
    (0.20, 0.842),
)


def z_for(delta: float) -> float:
    """Upstream's one-sided z for risk ``delta``: the first table row with δ ≤ bound."""
    for bound, z in Z_TABLE:
        if delta <= bound:
            return z
    return 0.0


class Beta(Struct, frozen=True):
    """A Beta(α, β) posterior and ``n``, the observations behind it (unweighted).

    ``n`` is carried, not derived: a kernel-smoothed posterior has fractional
    α and β but counts its neighbours' rows whole (spec §4.4).
    """

    alpha: float
    beta: float
    n: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha) and math.isfinite(self.beta)):
            raise ValueError(f"Beta parameters must be finite, got {self.alpha}, {self.beta}")
        if self.alpha <= 0 or self.beta <= 0:
            raise ValueError(f"Beta parameters must be > 0, got {self.alpha}, {self.beta}")
        _require_count("n", self.n)

    @classmethod
    def prior(cls) -> Beta:
        """The uniform prior Beta(1, 1) with no observations."""
        return cls(1.0, 1.0, 0)

    @classmethod
    def from_counts(cls, successes: int, failures: int) -> Beta:
        """The posterior after ``successes`` and ``failures`` on top of the prior."""
        _require_count("successes", successes)
        _require_count("failures", failures)
        return cls(1.0 + successes, 1.0 + failures, successes + failures)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        s = self.alpha + self.beta
        return (self.alpha * self.beta) / (s * s * (s + 1.0))

    def lower_bound(self, delta: float) -> float:
        """``clamp(mean − z(δ)·√var, 0, 1)``: normal approximation, not Wilson."""
        lb = self.mean - z_for(delta) * math.sqrt(self.variance)
        return min(max(lb, 0.0), 1.0)

    def observe(self, success: bool) -> Beta:
        """This posterior after one more observation."""
        if success:
            return Beta(self.alpha + 1.0, self.beta, self.n + 1)
        return Beta(self.alpha, self.beta + 1.0, self.n + 1)

    def sample(self, rng: random.Random) -> float:
        """One Thompson draw from the posterior, using (and advancing) ``rng``."""
        return rng.betavariate(self.alpha, self.beta)


def _require_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
