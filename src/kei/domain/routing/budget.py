"""A routing decision within a budget: what happens when the fallback costs too much.

``select`` already marks every ladder model whose estimated cost is above
``DecisionInput.budget_micro_cents`` as ``over_budget`` and not feasible. What is left
is the case where nothing feasible remains (or the DNA has no task class) and the
fallback, the model "when in doubt", is itself above the budget: upstream's rule would
spend more than there is. Then the dearest ladder model within the budget is chosen
(the most capable one there is money for), reason ``budget_capped``; a model priced
like another later in the ladder wins the tie. No ladder model within the budget is a
``NoMatchError``, and nothing is decided.

Every model the choice weighed is in the decision's candidates, priced: for an empty
DNA the ladder's models with the uninformed Beta(1, 1) prior, and the fallback itself
when it is not on the ladder; so ``kei route explain`` re-derives the choice from the
recorded prices alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kei.domain.agents.money import format_usd
from kei.domain.events.routing import RouteCandidate as Candidate
from kei.domain.routing.posterior import Beta
from kei.errors import NoMatchError

if TYPE_CHECKING:
    from kei.domain.routing.select import Decision, DecisionInput, PriceFn

Decide = Callable[[str, str, float, int, tuple[Candidate, ...]], "Decision"]


def within_budget(inp: DecisionInput, d: Decision, price: PriceFn, decide: Decide) -> Decision:
    """``d`` (a fallback decision) when it fits the budget, else the capped choice."""
    budget = inp.budget_micro_cents
    if budget is None or d.expected_cost_micro_cents <= budget:
        return d
    weighed = d.candidates or tuple(_prior(inp, m, price, budget) for m in inp.rungs)
    if d.model not in {c.model for c in weighed}:
        weighed = (*weighed, _prior(inp, d.model, price, budget))
    affordable = [c for c in weighed if not c.over_budget and c.model in inp.rungs]
    if not affordable:
        cheapest = min(weighed, key=lambda c: c.expected_cost_micro_cents)
        raise NoMatchError(
            f"no model fits the budget: {budget} µ¢ ({format_usd(budget)}) left, and the "
            f"cheapest candidate, {cheapest.model}, is estimated at "
            f"{cheapest.expected_cost_micro_cents} µ¢ for {inp.tokens_in} input and "
            f"{inp.tokens_out} output tokens",
            hint="raise the budget (`kei budget set`), expect fewer tokens, or --pin a model",
        )
    best = max(reversed(affordable), key=lambda c: c.expected_cost_micro_cents)
    return decide(best.model, "budget_capped", best.lower_bound, best.n, weighed)


def _prior(inp: DecisionInput, model: str, price: PriceFn, budget: int) -> Candidate:
    """A candidate with no evidence: the Beta(1, 1) prior, priced."""
    prior = Beta.from_counts(0, 0)
    cost = price(model, inp.tokens_in, inp.tokens_out)
    return Candidate(model=model, alpha=prior.alpha, beta=prior.beta, n=0,
                     lower_bound=prior.lower_bound(inp.delta), expected_cost_micro_cents=cost,
                     smoothed=False, feasible=False, over_budget=cost > budget)  # fmt: skip
