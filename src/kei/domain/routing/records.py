"""A routing decision as an event, and back: what makes ``kei route explain`` exact.

``decided_event`` records everything ``kei.domain.routing.select.select`` used and produced.
``input_of`` rebuilds the ``DecisionInput`` from that record and ``recorded_price``
prices candidates as the record says (the catalog may have changed since), so feeding
both to ``select`` with the evidence as the log stood before the decision must give
the recorded decision again; ``differences`` says where it does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from kei.domain.events.routing import RouteDecided, Weights
from kei.domain.routing.kernel import KernelWeights
from kei.domain.routing.select import Decision, DecisionInput


def weights_event(w: KernelWeights) -> Weights:
    return Weights(role=w.role, caps=w.caps, scope=w.scope, body=w.body)


def weights_value(w: Weights) -> KernelWeights:
    return KernelWeights(role=w.role, caps=w.caps, scope=w.scope, body=w.body)


def decided_event(
    decision_id: str,
    inp: DecisionInput,
    d: Decision,
    *,
    weights_ref: str | None = None,
    prompt_sha256: str | None = None,
    agent_id: str | None = None,
    budget_scope: str | None = None,
) -> RouteDecided:
    """The ``route.decided`` payload of decision ``d`` made from ``inp`` (``budget_scope``:
    the budget whose remaining amount ``inp.budget_micro_cents`` is, if any)."""
    return RouteDecided(
        decision_id=decision_id, dna=inp.dna, task_class=d.task_class, model=d.model,
        reason=d.reason, policy=d.policy, q_threshold=inp.q_threshold, delta=inp.delta,
        tokens_in=inp.tokens_in, tokens_out=inp.tokens_out, ladder=inp.rungs,
        fallback=inp.last_resort, candidates=d.candidates,
        lower_bound=d.lower_bound, n=d.n, expected_cost_micro_cents=d.expected_cost_micro_cents,
        weights=weights_event(inp.weights), weights_ref=weights_ref, seed=d.seed,
        pinned=inp.pinned, complexity_tau=d.complexity.tau,
        complexity_features=d.complexity.features, tier=d.tier.value,
        prompt_sha256=prompt_sha256, agent_id=agent_id,
        budget_micro_cents=inp.budget_micro_cents, budget_scope=budget_scope,
    )  # fmt: skip


def input_of(e: RouteDecided, prompt: str = "") -> DecisionInput:
    """The input the recorded decision was made from (the prompt is not recorded)."""
    policy = "bound" if e.policy not in ("bound", "thompson") else e.policy
    return DecisionInput(
        dna=e.dna, prompt=prompt, pinned=e.pinned, policy=policy, q_threshold=e.q_threshold,
        delta=e.delta, ladder=e.ladder, fallback=e.fallback, tokens_in=e.tokens_in,
        tokens_out=e.tokens_out, weights=weights_value(e.weights), seed=e.seed,
        budget_micro_cents=e.budget_micro_cents,
    )  # fmt: skip


def recorded_price(e: RouteDecided) -> Callable[[str, int, int], int]:
    """Prices as the decision saw them: each candidate's recorded estimate."""
    costs = {c.model: c.expected_cost_micro_cents for c in e.candidates}
    costs.setdefault(e.model, e.expected_cost_micro_cents)

    def price(model: str, _tokens_in: int, _tokens_out: int) -> int:
        return costs.get(model, 0)

    return price


def differences(e: RouteDecided, d: Decision) -> list[str]:
    """Where re-deriving ``e`` gave ``d`` something else; empty when identical."""
    found = [
        f"{name}: recorded {a!r}, re-derived {b!r}"
        for name, a, b in (
            ("model", e.model, d.model),
            ("reason", e.reason, d.reason),
            ("task class", e.task_class, d.task_class),
            ("n", e.n, d.n),
        )
        if a != b
    ]
    if not _close(e.lower_bound, d.lower_bound):
        found.append(f"lower bound: recorded {e.lower_bound!r}, re-derived {d.lower_bound!r}")
    again = d.candidates
    for was, now in zip(e.candidates, again, strict=False):
        if was != now:
            found.append(f"candidate {was.model}: recorded {was}, re-derived {now}")
    if len(e.candidates) != len(again):
        found.append(f"candidates: recorded {len(e.candidates)}, re-derived {len(again)}")
    return found


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)
