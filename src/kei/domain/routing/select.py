"""The routing decision: the cheapest model trusted enough for a task (spec §4.4).

Pure: a service reads success/failure counts from a projection and prices from
the catalog, and passes them in through :class:`Evidence` and a price function.
Rules, upstream kei-model-router's ``select`` unless noted:

1. ``role`` is the DNA's first ``::`` segment; complexity τ is estimated and
   reported, never used to choose.
2. A pinned model wins outright: reason ``pinned``, lower bound 1.0, n 0.
3. An empty or malformed DNA has no task class: the fallback, reason
   ``empty_dna`` (kei parses strictly, so a malformed DNA ends here too).
4. For each ladder model: the posterior from the class's counts, or, when the
   class has none, kernel smoothing over the model's other classes.
5. policy ``bound``: a model is feasible when its lower bound at δ clears
   ``q_threshold``; the cheapest feasible wins (ties keep ladder order), reason
   ``argmin_cost_feasible``.
   policy ``thompson`` (kei's addition): each model draws one sample from its
   posterior, in ladder order, from ``random.Random(seed)``; feasible when the
   sample clears the threshold; reason ``thompson_cheapest_feasible``. The seed
   is required so the decision can be re-derived exactly (same Python
   ``random`` algorithm assumed).
6. Nothing feasible: the fallback, reason ``no_feasible``, lower bound 0.0, n 0
   ("no downgrade": an unknown class goes to the top tier).
7. A budget (kei's addition, upstream's ``budget_micro`` input, ``budget.py``): a
   ladder model whose estimated cost is above ``budget_micro_cents`` is not feasible
   (``over_budget``); when rule 3 or 6 would pick a fallback above the budget, the
   dearest ladder model within it is chosen instead, reason ``budget_capped``; none
   within it is a ``NoMatchError``. A pin ignores the budget.

Every candidate's α, β, n, bound, cost and sample are kept in the
:class:`Decision`, so it can be recorded in an event and explained later.
Model names are compared exactly: the service maps aliases to catalog ids
before counting (spec §12.4: upstream's posterior saw only two names per tier).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from msgspec import Struct, field

from kei.domain.agents.dna import parse_dna
from kei.domain.events.routing import RouteCandidate as Candidate
from kei.domain.routing.budget import within_budget
from kei.domain.routing.complexity import Complexity, Tier, estimate
from kei.domain.routing.kernel import KernelWeights, smoothed
from kei.domain.routing.posterior import Beta
from kei.errors import InputError

__all__ = [
    "DEFAULT_LADDER",
    "POLICIES",
    "Candidate",
    "Decision",
    "DecisionInput",
    "Evidence",
    "PriceFn",
    "select",
]

# Spec §4.1/§4.4: the escalation ladder (cheapest first) and the fallback, as kei catalog ids.
DEFAULT_LADDER: Final = ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7")
DEFAULT_FALLBACK: Final = "claude-opus-4-7"
POLICIES: Final = ("bound", "thompson")
_WIN_REASON: Final[Mapping[str, str]] = {
    "bound": "argmin_cost_feasible",
    "thompson": "thompson_cheapest_feasible",
}

PriceFn = Callable[[str, int, int], int]
"""``price(model, tokens_in, tokens_out)`` → estimated micro-cents."""


class Evidence(Protocol):
    """First-pass outcome counts per (task class, model), read from a projection."""

    def counts(self, task_class: str, model: str) -> tuple[int, int]:
        """``(n⁺, n⁻)`` for the class and model; ``(0, 0)`` when there are none."""
        ...

    def classes(self, model: str) -> Mapping[str, tuple[int, int]]:
        """``(n⁺, n⁻)`` of every task class with rows for ``model``."""
        ...


class DecisionInput(Struct, frozen=True):
    """What to route, and how. Defaults are upstream's (spec §4.4)."""

    dna: str
    prompt: str = ""
    pinned: str | None = None
    policy: str = "bound"
    q_threshold: float = 0.70
    delta: float = 0.10
    ladder: tuple[str, ...] | None = None  # None: the catalog's [router], else kei's default
    fallback: str | None = None
    tokens_in: int = 4000
    tokens_out: int = 1500
    weights: KernelWeights = field(default_factory=KernelWeights)
    seed: int | None = None
    budget_micro_cents: int | None = None  # the most one call may cost; None: no budget

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise InputError(
                f"unknown routing policy {self.policy!r}", hint=f"use one of {', '.join(POLICIES)}"
            )
        if self.policy == "thompson" and self.seed is None:
            raise ValueError("policy 'thompson' needs a seed, so the decision can be re-derived")
        for name, value in (("q_threshold", self.q_threshold), ("delta", self.delta)):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise InputError(f"{name} must be between 0 and 1, found {value}")
        counts = [("tokens_in", self.tokens_in), ("tokens_out", self.tokens_out)]
        if self.budget_micro_cents is not None:
            counts.append(("budget_micro_cents", self.budget_micro_cents))
        for name, count in counts:
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InputError(f"{name} must be a non-negative integer, found {count!r}")
        if self.ladder is not None and (
            not self.ladder or len(set(self.ladder)) != len(self.ladder)
        ):
            raise InputError(f"the ladder must name distinct models, found {self.ladder!r}")

    @property
    def rungs(self) -> tuple[str, ...]:
        """The candidates, cheapest first: the input's ladder, else kei's default (the
        route service fills in the catalog's ``[router] ladder`` first)."""
        return DEFAULT_LADDER if self.ladder is None else self.ladder

    @property
    def last_resort(self) -> str:
        """The model when nothing is feasible: the input's, else kei's default."""
        return DEFAULT_FALLBACK if self.fallback is None else self.fallback


class Decision(Struct, frozen=True):
    """The chosen model, why, and the evidence behind it."""

    model: str
    reason: str
    candidates: tuple[Candidate, ...]
    task_class: str | None
    complexity: Complexity
    tier: Tier
    lower_bound: float
    n: int
    expected_cost_micro_cents: int
    policy: str
    seed: int | None


def select(inp: DecisionInput, evidence: Evidence, price: PriceFn) -> Decision:
    """Route ``inp`` given the ledger's ``evidence`` and the catalog's ``price``."""
    complexity = estimate(inp.prompt, inp.dna.split("::", 1)[0])
    task_class = _task_class(inp.dna)

    def decide(
        model: str, reason: str, lb: float, n: int, cands: tuple[Candidate, ...]
    ) -> Decision:
        cost = price(model, inp.tokens_in, inp.tokens_out)
        return Decision(model, reason, cands, task_class, complexity, complexity.tier, lb, n,
                        cost, inp.policy, inp.seed)  # fmt: skip

    if inp.pinned is not None:
        return decide(inp.pinned, "pinned", 1.0, 0, ())
    if task_class is None:
        return within_budget(inp, decide(inp.last_resort, "empty_dna", 0.0, 0, ()), price, decide)
    candidates = _candidates(inp, task_class, evidence, price)
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        fallback = decide(inp.last_resort, "no_feasible", 0.0, 0, candidates)
        return within_budget(inp, fallback, price, decide)
    best = min(feasible, key=lambda c: c.expected_cost_micro_cents)  # first of equals: stable
    return decide(best.model, _WIN_REASON[inp.policy], best.lower_bound, best.n, candidates)


def _task_class(dna: str) -> str | None:
    """The DNA's task class, or None when it is empty or does not parse."""
    try:
        return parse_dna(dna).task_class
    except InputError:
        return None


def _candidates(
    inp: DecisionInput, task_class: str, evidence: Evidence, price: PriceFn
) -> tuple[Candidate, ...]:
    rng = random.Random(inp.seed) if inp.policy == "thompson" else None
    out = []
    for model in inp.rungs:
        post = Beta.from_counts(*evidence.counts(task_class, model))
        is_smoothed = post.n == 0
        if is_smoothed:
            post = smoothed(task_class, evidence.classes(model), inp.weights)
        lb = post.lower_bound(inp.delta)
        sample = post.sample(rng) if rng is not None else None
        score = lb if sample is None else sample
        cost = price(model, inp.tokens_in, inp.tokens_out)
        over = inp.budget_micro_cents is not None and cost > inp.budget_micro_cents
        out.append(Candidate(model=model, alpha=post.alpha, beta=post.beta, n=post.n,
                             lower_bound=lb, expected_cost_micro_cents=cost, smoothed=is_smoothed,
                             feasible=score >= inp.q_threshold and not over, sample=sample,
                             over_budget=over))  # fmt: skip
    return tuple(out)
