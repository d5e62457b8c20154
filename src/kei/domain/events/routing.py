"""The router's events: every decision with its evidence, escalations, outcomes, weights.

Upstream's router could never learn: nothing wrote the outcomes it read, and its
calibrated weights were printed and thrown away (spec §4, §12). Here each decision is
appended with everything it was made from (every candidate's α, β, n, lower bound and
estimated cost, the policy, its parameters and the seed of a sampled policy), so
``kei route explain`` can re-derive it from the log as of its position; each outcome
is an event the posteriors fold; calibrated weights are an event later decisions use.

A decision lives on its own stream ``route/<decision_id>``: decided first, then any
escalations and outcomes. Model names in these events are catalog ids (aliases are
resolved before anything is appended), so the posterior projection needs no catalog
and an alias counts as its model everywhere.
"""

from __future__ import annotations

from typing import Final

import msgspec

from kei.domain.events.payload import Outcome, Payload

ROUTE_STREAM_PREFIX: Final = "route/"
WEIGHTS_STREAM: Final = "route.weights"


class Weights(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Kernel weights over DNA segments (upstream defaults 0.40 / 0.25 / 0.25 / 0.10)."""

    role: float = 0.40
    caps: float = 0.25
    scope: float = 0.25
    body: float = 0.10


class RouteCandidate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One model the router weighed, with the evidence it saw.

    ``smoothed``: no outcome of this task class on this model yet, so α and β come
    from kernel smoothing over similar classes (``n`` is then their unweighted count).
    ``sample``: the Beta draw of a sampled (Thompson) policy, else None.
    ``over_budget``: its estimated cost is above the decision's budget, so it was not
    feasible whatever its evidence (new in schema 2 of ``route.decided``).
    """

    model: str
    alpha: float
    beta: float
    n: int
    lower_bound: float
    expected_cost_micro_cents: int
    smoothed: bool
    feasible: bool
    sample: float | None = None
    over_budget: bool = False


class RouteDecided(Payload, frozen=True, kw_only=True):
    """``kei route select``: the model chosen for a task, and why.

    ``weights_ref`` names the ``route.weights.calibrated`` event (``STREAM:VERSION``)
    whose weights were used, None for the defaults. ``prompt_sha256`` identifies the
    prompt the complexity was estimated from without storing it.
    ``budget_micro_cents``: the most a call could cost (None: no budget), and
    ``budget_scope`` the budget's scope it was the remaining amount of (None when given
    as a number); both new in schema 2.
    """

    decision_id: str
    dna: str
    task_class: str | None
    model: str
    reason: str
    policy: str
    q_threshold: float
    delta: float
    tokens_in: int
    tokens_out: int
    ladder: tuple[str, ...]
    fallback: str
    candidates: tuple[RouteCandidate, ...] = ()
    lower_bound: float = 0.0
    n: int = 0
    expected_cost_micro_cents: int = 0
    budget_micro_cents: int | None = None  # schema 2: the budget the choice was made within
    budget_scope: str | None = None
    weights: Weights = Weights()
    weights_ref: str | None = None
    seed: int | None = None
    pinned: str | None = None
    complexity_tau: float = 0.5
    complexity_features: tuple[str, ...] = ()
    tier: str = ""
    prompt_sha256: str | None = None
    agent_id: str | None = None


class RouteEscalated(Payload, frozen=True, kw_only=True):
    """A failed attempt moved the task one step up the ladder (at most two steps)."""

    decision_id: str
    from_model: str
    to_model: str
    depth: int
    reason: str = "failure"


class RouteOutcome(Payload, frozen=True, kw_only=True):
    """How the routed work turned out: what the posteriors learn from.

    Success for the posterior is ``functional`` at ``escalation_depth`` 0 (upstream's
    rule: a success reached only after escalating counts against the first model).
    """

    decision_id: str
    task_class: str
    model: str
    outcome: Outcome
    escalation_depth: int = 0
    agent_id: str | None = None


class WeightsCalibrated(Payload, frozen=True, kw_only=True):
    """``kei route calibrate --apply``: kernel weights later decisions use.

    ``mse`` of the chosen weights beside the defaults' ``baseline_mse`` over
    ``observations`` leave-one-out predictions; upstream printed these and forgot them.
    """

    weights: Weights
    mse: float
    baseline_mse: float
    observations: int
    evaluated: int


def decision_stream(decision_id: str) -> str:
    """The stream of one decision and what followed it."""
    return ROUTE_STREAM_PREFIX + decision_id
