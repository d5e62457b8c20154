"""Which local backend serves a requested model (upstream kei-llm-router ``decide``), with
the catalog fallback walk that upstream could never reach.

Inputs are plain values: the machine's :class:`Capacity` (capability and viable backend
kinds, as the machine probe recommends them) and one :class:`Inventory` per viable
backend (the model names it serves, from :func:`discover`). Rules of :func:`decide`:

1. A machine where no local inference is viable, with ``require_local``:
   :class:`NoCompatibleBackendError` whose reason is the probe's rationale joined by "; ".
2. The requested model is matched against each backend's names in order
   (``kei.domain.catalog.match.pick_match``); the first backend with a match wins, with
   rationale ``first viable backend `k` matched `name` (exact|fuzzy)``.
3. The fix: when no backend serves it, walk the catalog's fallback chain
   (``Catalog.chain``) and try each fallback model the same way; every model tried is
   recorded. Upstream only walked when there were no backends at all (where the walk
   cannot find anything) and never with ``require_local``; kei walks in both cases,
   since every model it can reach this way runs locally.
4. The other fix (upstream ignored both): a ``role`` skips fallback models without that
   role tag (the requested model is tried whatever its tags), and a ``budget_micro``
   skips any catalog model whose price of 1,000 input plus 1,000 output tokens is over
   it, the requested one included. Skips are listed in the rationale.
5. A decision's ``tried`` lists every ``kind:model`` attempt in order, the winner last.
   Nothing found: :class:`NoBackendAvailableError` with ``tried`` = the backend kinds
   (``["<none>"]`` when there were none, as upstream) and ``models_tried``.
6. When the catalog knows the matched model, its pricing is attached and the rationale
   says ``registry pricing status: <status>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from msgspec import Struct

from kei.domain.agents.money import price_micro_cents
from kei.domain.catalog.catalog import Catalog, Model, Pricing
from kei.domain.catalog.match import Match, pick_match
from kei.errors import (
    FallbackCycleError,
    InputError,
    LlmError,
    NoBackendAvailableError,
    NoCompatibleBackendError,
)

__all__ = [
    "NONE_TRIED",
    "Capacity",
    "Inventory",
    "RouteDecision",
    "decide",
    "discover",
]

log = logging.getLogger(__name__)
NONE_TRIED = "<none>"


class Capacity(Struct, frozen=True):
    """The machine probe's recommendation as plain values."""

    capability: str
    backends: tuple[str, ...]
    rationale: tuple[str, ...] = ()

    @property
    def viable(self) -> bool:
        return bool(self.backends)


class Inventory(Struct, frozen=True):
    """The names one backend serves; ``error`` says why discovery found none."""

    kind: str
    names: tuple[str, ...] = ()
    error: str | None = None


class RouteDecision(Struct, frozen=True):
    requested_model: str
    backend: str
    model: str  # the name the backend knows it by
    exact: bool
    matched_model: str  # the requested model, or the fallback that matched
    tried: tuple[str, ...]  # "kind:model" attempts in order, the winner last
    rationale: tuple[str, ...]
    capability: str | None = None
    catalog_model: Model | None = None
    require_local: bool = False

    @property
    def pricing(self) -> Pricing | None:
        return None if self.catalog_model is None else self.catalog_model.pricing

    @property
    def via_fallback(self) -> bool:
        return self.matched_model != self.requested_model


def discover(sources: Iterable[tuple[str, Callable[[], Sequence[str]]]]) -> list[Inventory]:
    """Ask each backend (kind, lister) for its names; a failing one lists none, with why."""
    found: list[Inventory] = []
    for kind, lister in sources:
        try:
            found.append(Inventory(kind, tuple(lister())))
        except LlmError as exc:
            log.info("%s: no models listed: %s", kind, exc)
            found.append(Inventory(kind, (), str(exc)))
    return found


def decide(
    model_id: str,
    inventories: Sequence[Inventory],
    capacity: Capacity,
    *,
    require_local: bool = False,
    catalog: Catalog | None = None,
    role: str | None = None,
    budget_micro: int | None = None,
) -> RouteDecision:
    """The backend that serves ``model_id`` or its first servable fallback (module rules)."""
    if not model_id.strip():
        raise InputError("the model name is empty", hint="pass --model with a model name")
    if require_local and not capacity.viable:
        raise NoCompatibleBackendError("; ".join(capacity.rationale) or
                                       f"capability {capacity.capability}")  # fmt: skip
    walk, notes = _candidates(model_id, catalog)
    skipped: list[str] = []
    tried_models: list[str] = []
    attempts: list[str] = []
    for step, model in enumerate(walk):
        entry = catalog.find(model) if catalog is not None else None
        reason = _excluded(entry, role if step > 0 else None, budget_micro)
        if reason is not None:
            skipped.append(f"`{model}` skipped: {reason}")
            continue
        tried_models.append(model)
        for inv in inventories:
            attempts.append(f"{inv.kind}:{model}")
            match = pick_match(model, inv.names)
            if match is not None:
                found = _Found(model, step, inv.kind, match, entry, tuple(attempts))
                return _decision(model_id, found, capacity, require_local, [*notes, *skipped])
    tried = [inv.kind for inv in inventories] or [NONE_TRIED]
    why = [f"{inv.kind}: {inv.error}" for inv in inventories if inv.error] + notes + skipped
    raise NoBackendAvailableError(model_id, tried, tried_models, why)


def _candidates(model_id: str, catalog: Catalog | None) -> tuple[list[str], list[str]]:
    """The requested model, then its catalog fallbacks."""
    if catalog is None or catalog.find(model_id) is None:
        return [model_id], []
    try:
        chain = catalog.chain(model_id)
    except FallbackCycleError as exc:
        return [model_id], [f"fallback chain not walked: {exc}"]
    notes = [] if chain.dangling is None else [f"fallback {chain.dangling!r} is not in the catalog"]
    return [model_id, *(m.id for m in chain.models[1:])], notes


def _excluded(entry: Model | None, role: str | None, budget_micro: int | None) -> str | None:
    if entry is None:
        return None
    if role is not None and role not in entry.role_tags:
        return f"no role tag {role!r}"
    if budget_micro is not None and entry.pricing.unit == "token":
        p = entry.pricing
        cost = price_micro_cents(1000, 1000, p.input_per_mtok_micro, p.output_per_mtok_micro)
        if cost > budget_micro:
            return f"{cost} µ¢ per 1k+1k tokens is over the budget of {budget_micro} µ¢"
    return None


class _Found(Struct, frozen=True):
    model: str
    step: int
    kind: str
    match: Match
    entry: Model | None
    attempts: tuple[str, ...]


def _decision(
    requested: str, found: _Found, capacity: Capacity, require_local: bool, notes: list[str]
) -> RouteDecision:
    how = "exact" if found.match.exact else "fuzzy"
    rationale = [f"first viable backend `{found.kind}` matched `{found.match.name}` ({how})"]
    if found.step > 0:
        rationale.append(
            f"no backend serves `{requested}`; fallback step {found.step} `{found.model}`"
        )
    rationale += notes
    if found.entry is not None:
        rationale.append(f"registry pricing status: {found.entry.pricing.status}")
    return RouteDecision(
        requested_model=requested,
        backend=found.kind,
        model=found.match.name,
        exact=found.match.exact,
        matched_model=found.model,
        tried=found.attempts,
        rationale=tuple(rationale),
        capability=capacity.capability,
        catalog_model=found.entry,
        require_local=require_local,
    )
