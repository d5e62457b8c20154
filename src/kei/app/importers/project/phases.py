"""Running a plan phase: an agent forked for it, with a DNA naming its trait.

Upstream's ``execute --prereg`` wrote ledger rows with ``status = 'queued'``, a
status the ledger's own CHECK refuses. kei forks an agent per phase instead, through
the agent rules (``AgentWriter.fork``): id ``import-<slug>-<phase>`` (so two
projects' phases never share an id, unlike upstream's ``import-phase-1-1`` in every
project), branch ``import/<slug>/<phase>``, ``spec_sha`` the first 16 hex of the
prompt's SHA-256 and a DNA built as upstream's ``DnaBuilder`` does with role
``code-implementer``, the trait as its caps, the project as its scope and the prompt
as its body. The router's posteriors are per task class, so the outcomes of these
agents teach it which models port which trait. Then ``project.plan.phase`` records the
phase as ``forked``. A run killed between the two appends finds its agent on the
next try and records the phase.
"""

from __future__ import annotations

import hashlib
import os

from msgspec import Struct

from kei.app.agent_writes import AgentWriter, agent_stream
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents.dna import build_dna
from kei.domain.events import AgentForked
from kei.domain.events.project import PlanPhase, project_stream
from kei.domain.project import state as project_state
from kei.domain.project.plan import phase_prompt
from kei.errors import InputError

ROLE = "code-implementer"


class PhaseFork(Struct, frozen=True):
    phase_id: str
    agent_id: str
    dna: str | None
    appended: int
    message: str


def run_phase(ledger: Ledger, slug: str, phase_id: str) -> PhaseFork:
    """Fork the agent of ``phase_id`` of project ``slug`` (once)."""
    stream = project_stream(slug)
    stored = ledger.read_stream_checked(stream)
    s = project_state.fold(e.payload() for e in stored)
    found = s.phases.get(phase_id)
    if found is None:
        known = ", ".join(sorted(s.phases)) or "none"
        raise InputError(f"project {slug!r} has no phase {phase_id!r}", hint=f"phases: {known}")
    phase = found.phase
    if phase.status == "forked" and found.agent_id is not None:
        return PhaseFork(phase_id, found.agent_id, None, 0, f"{phase_id} already forked")
    if phase.status == "blocked-needs-review":
        raise InputError(
            f"phase {phase_id} holds weak matches and needs review before it runs",
            hint="check the modules with --report; confident phases are P0 to P3",
        )
    agent_id = f"import-{slug}-{phase_id.lower().replace('.', '-')}"[:200]
    names = {i: m.name for i, m in s.modules.items()}
    prompt = phase_prompt(s.project or slug, phase, names)
    dna = build_dna(ROLE, [phase.trait], slug, prompt, os.urandom(4))
    request = AgentForked(
        agent_id=agent_id, branch=f"import/{slug}/{phase_id}"[:256],
        spec_sha=hashlib.sha256(prompt.encode()).hexdigest()[:16], dna=str(dna),
    )  # fmt: skip
    appended = 0
    if ledger.store.stream_version(agent_stream(agent_id)) == 0:
        appended += AgentWriter(ledger).fork(request).appended
    forked = PlanPhase(
        project=s.project or slug, phase_id=phase_id, trait=phase.trait,
        priority=phase.priority, status="forked",  # type: ignore[arg-type]
        module_ids=phase.module_ids, agent_id=agent_id,
    )  # fmt: skip
    ledger.append([NewEvent(stream, forked, len(stored))])
    return PhaseFork(phase_id, agent_id, str(dna), appended + 1, f"forked {agent_id}")
