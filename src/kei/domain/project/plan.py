"""The port plan: confident modules grouped into phases by trait, in priority order.

Upstream's rules (``plan_generator.rs``): a module whose best trait scores at least
the threshold joins that trait's phase; phases are ordered by the trait's priority
(``PRIORITY``) then by how many modules they hold, and numbered ``P0.1``, ``P0.2``,
``P1.1``…, status ``scaffolding``; modules scoring from 0.3 to the threshold go to
``Pwip.N`` phases (``blocked-needs-review``); the rest are unmatched.
Upstream's ``execute --prereg`` then wrote ledger rows with ``status = 'queued'``,
which the ledger's own CHECK refuses; kei forks an agent per phase instead
(``kei import project --run-phase``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from msgspec import Struct

from kei.domain.project.facts import ModuleFacts
from kei.domain.project.traits import CONFIDENT, WEAK

SCAFFOLDING: Final = "scaffolding"
BLOCKED: Final = "blocked-needs-review"
FORKED: Final = "forked"

PRIORITY: Final = {
    "MemoryBackend": "P0", "AuthProvider": "P0", "ServiceManager": "P0",
    "ComputeProvider": "P1", "GitBackend": "P1", "NetworkMode": "P1",
    "NotifyChannel": "P2", "LlmBackend": "P2", "Scheduler": "P2",
    "CostGuard": "P3", "Backup": "P3", "Observability": "P3",
}  # fmt: skip


class Phase(Struct, frozen=True):
    """One phase: its id, trait, priority, status and modules (ids, sorted)."""

    phase_id: str
    trait: str
    priority: str
    status: str
    module_ids: tuple[str, ...]


class Plan(Struct, frozen=True):
    phases: tuple[Phase, ...]
    unmatched: tuple[str, ...]
    average_confidence: float


def make_plan(modules: Sequence[ModuleFacts], threshold: float = CONFIDENT) -> Plan:
    """The plan of ``modules`` (in their order) at ``threshold``, as upstream's
    ``build_plan``: phases by priority, then by module count, then by trait name;
    ``Pwip`` phases by trait name; the average over the confident modules only."""
    sure: dict[str, list[str]] = {}
    review: dict[str, list[str]] = {}
    unmatched: list[str] = []
    scores: list[float] = []
    for m in modules:
        if m.error is not None:
            continue
        best = m.best
        confidence = best.confidence if best is not None else 0.0
        if best is not None and confidence >= threshold:
            sure.setdefault(best.trait, []).append(m.module_id)
            scores.append(confidence)
        elif best is not None and confidence >= WEAK:
            review.setdefault(best.trait, []).append(m.module_id)
        else:
            unmatched.append(m.module_id)
    phases: list[Phase] = []
    counters: dict[str, int] = {}
    for trait in sorted(sure, key=lambda t: (PRIORITY.get(t, "P3"), -len(sure[t]), t)):
        priority = PRIORITY.get(trait, "P3")
        counters[priority] = counters.get(priority, 0) + 1
        ids = tuple(sure[trait])
        phases.append(Phase(f"{priority}.{counters[priority]}", trait, priority, SCAFFOLDING, ids))
    for n, trait in enumerate(sorted(review), 1):
        phases.append(Phase(f"Pwip.{n}", trait, "Pwip", BLOCKED, tuple(review[trait])))
    average = sum(scores) / len(scores) if scores else 0.0
    return Plan(tuple(phases), tuple(unmatched), average)


def stored_plan(phases: Sequence[Phase], modules: Sequence[ModuleFacts]) -> Plan:
    """A plan from phases as recorded: unmatched are the readable modules in no phase,
    the average is over the modules of the confident (non-``Pwip``) phases."""
    placed = {i for p in phases for i in p.module_ids}
    sure = {i for p in phases if p.priority != "Pwip" for i in p.module_ids}
    scores = [b.confidence for m in modules if m.module_id in sure and (b := m.best) is not None]
    unmatched = tuple(m.module_id for m in modules if m.error is None and m.module_id not in placed)
    return Plan(tuple(phases), unmatched, sum(scores) / len(scores) if scores else 0.0)


def phase_prompt(project: str, phase: Phase, names: dict[str, str]) -> str:
    """The task an agent forked for ``phase`` is given (its DNA's body is its hash)."""
    listed = "\n".join(f"- {names.get(i, i)} ({i})" for i in phase.module_ids)
    return (
        f"Port the {phase.trait} modules of {project} (phase {phase.phase_id}) onto kei's "
        f"{phase.trait} trait:\n{listed}\n"
    )
