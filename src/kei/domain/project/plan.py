"""The port plan: confident modules grouped into phases by trait, in priority order.

Upstream's rules: a module whose best trait scores at least the threshold joins that
trait's phase; phases are ordered by the trait's priority (``PRIORITY``) then by how
many modules they hold, and numbered ``P0.1``, ``P0.2``, ``P1.1``…; modules scoring
from 0.3 to the threshold go to ``Pwip.N`` phases to review; the rest are unmatched.
Upstream's ``execute --prereg`` then wrote ledger rows with ``status = 'queued'``,
which the ledger's own CHECK refuses; kei forks an agent per phase instead
(``kei import project --run-phase``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from msgspec import Struct

from kei.domain.project.facts import ModuleFacts
from kei.domain.project.traits import CONFIDENT

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
    """The plan of ``modules`` at ``threshold``."""
    sure: dict[str, list[str]] = {}
    review: dict[str, list[str]] = {}
    unmatched: list[str] = []
    scores: list[float] = []
    for m in modules:
        if m.error is not None:
            continue
        best = m.best
        if best is not None and best.confidence >= threshold:
            sure.setdefault(best.trait, []).append(m.module_id)
        elif m.weak(threshold) is not None and best is not None:
            review.setdefault(best.trait, []).append(m.module_id)
        else:
            unmatched.append(m.module_id)
            continue
        scores.append(best.confidence)
    phases: list[Phase] = []
    order = sorted(sure, key=lambda t: (PRIORITY.get(t, "P3"), -len(sure[t]), t))
    counters: dict[str, int] = {}
    for trait in order:
        priority = PRIORITY.get(trait, "P3")
        counters[priority] = counters.get(priority, 0) + 1
        phase_id = f"{priority}.{counters[priority]}"
        phases.append(Phase(phase_id, trait, priority, "proposed", tuple(sorted(sure[trait]))))
    for n, trait in enumerate(sorted(review, key=lambda t: (-len(review[t]), t)), 1):
        ids = tuple(sorted(review[trait]))
        phases.append(Phase(f"Pwip.{n}", trait, "Pwip", "needs-review", ids))
    average = sum(scores) / len(scores) if scores else 0.0
    return Plan(tuple(phases), tuple(sorted(unmatched)), average)


def phase_prompt(project: str, phase: Phase, names: dict[str, str]) -> str:
    """The task an agent forked for ``phase`` is given (its DNA's body is its hash)."""
    listed = "\n".join(f"- {names.get(i, i)} ({i})" for i in phase.module_ids)
    return (
        f"Port the {phase.trait} modules of {project} (phase {phase.phase_id}) onto kei's "
        f"{phase.trait} trait:\n{listed}\n"
    )
