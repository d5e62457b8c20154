"""The gap report and the plan of an imported project, from the ``projects`` read model.

Both are rendered by ``kei.domain.project.report`` from what the read model holds
after catching up, so they say what the log says, whatever the folder holds now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kei.app.ledger.ledger import Ledger
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.plan import stored_plan
from kei.domain.project.report import (
    PlanHeader,
    gap_report,
    gap_report_json,
    plan_json,
    plan_markdown,
)
from kei.domain.project.traits import CONFIDENT
from kei.errors import InputError
from kei.projections.projects import Projects


class ProjectReads(ReadModelService):
    """Reports over the ``projects`` read model."""

    def __init__(self, ledger: Ledger, *, seal_key: bytes | None = None) -> None:
        self.projection = Projects()
        super().__init__(ReadModels(ledger, self.projection, name="projects", seal_key=seal_key))

    def modules(self, slug: str) -> tuple[str, list[ModuleFacts]]:
        """The project's name and modules; refuses a project never imported."""
        self.models.catch_up()
        with self.models.connect() as conn:
            name, modules = self.projection.read_modules(conn, slug)
        if name is None:
            raise InputError(
                f"no import of project {slug!r} in this ledger",
                hint="run kei import project PATH first (or pass the --name it was imported as)",
            )
        return name, modules

    def report(self, slug: str, *, as_json: bool) -> str | dict[str, Any]:
        name, modules = self.modules(slug)
        return gap_report_json(name, modules) if as_json else gap_report(name, modules)

    def plan(self, slug: str, *, as_json: bool) -> str | dict[str, Any]:
        """The plan as the log last recorded it (its phases, forks included), in
        upstream's layout: unmatched are the readable modules in no phase."""
        name, modules = self.modules(slug)
        with self.models.connect() as conn:
            stored = self.projection.read_phases(conn, slug)
            run = self.projection.read_run(conn, slug)
        source, started_us, threshold = run if run is not None else ("?", 0, CONFIDENT)
        plan = stored_plan([p for p, _ in stored], modules)
        agents = {p.phase_id: a for p, a in stored}
        if as_json:
            data = plan_json(name, plan, threshold)
            for phase in data["phases"]:
                phase["agent_id"] = agents.get(phase["phase_id"])
            return data
        generated = datetime.fromtimestamp(started_us // 1_000_000, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        return plan_markdown(PlanHeader(name, source, generated), plan, modules, threshold, agents)
