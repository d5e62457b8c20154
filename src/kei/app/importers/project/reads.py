"""The gap report and the plan of an imported project, from the ``projects`` read model.

Both are rendered by ``kei.domain.project.report`` from what the read model holds
after catching up, so they say what the log says, whatever the folder holds now.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kei.app.readmodels import caught_up
from kei.domain.project import report as render
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.plan import stored_plan
from kei.domain.project.traits import CONFIDENT
from kei.errors import InputError
from kei.projections.projects import Projects

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from kei.app.ledger.ledger import Ledger


def gap_report(
    ledger: Ledger, slug: str, *, as_json: bool, seal_key: bytes | None = None
) -> str | dict[str, Any]:
    """The gap report: upstream's markdown, or every module's facts as JSON."""
    with _reading(ledger, seal_key) as (projection, conn):
        name, modules = _modules(projection, conn, slug)
    return render.gap_report_json(name, modules) if as_json else render.gap_report(name, modules)


def plan(
    ledger: Ledger, slug: str, *, as_json: bool, seal_key: bytes | None = None
) -> str | dict[str, Any]:
    """The plan as the log last recorded it (its phases, forks included), in
    upstream's layout: unmatched are the readable modules in no phase."""
    with _reading(ledger, seal_key) as (projection, conn):
        name, modules = _modules(projection, conn, slug)
        stored = projection.read_phases(conn, slug)
        run = projection.read_run(conn, slug)
    source, started_us, threshold = run if run is not None else ("?", 0, CONFIDENT)
    found = stored_plan([p for p, _ in stored], modules)
    agents = {p.phase_id: a for p, a in stored}
    if as_json:
        data = render.plan_json(name, found, threshold)
        for phase in data["phases"]:
            phase["agent_id"] = agents.get(phase["phase_id"])
        return data
    when = datetime.fromtimestamp(started_us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = render.PlanHeader(name, source, when)
    return render.plan_markdown(header, found, modules, threshold, agents)


@contextmanager
def _reading(ledger: Ledger, seal_key: bytes | None) -> Iterator[tuple[Projects, Connection]]:
    """The ``projects`` read model caught up, and a connection to read it."""
    projection = Projects()
    with (
        caught_up(ledger, projection, name="projects", seal_key=seal_key) as models,
        models.connect() as conn,
    ):
        yield projection, conn


def _modules(projection: Projects, conn: Connection, slug: str) -> tuple[str, list[ModuleFacts]]:
    """The project's name and modules; refuses a project never imported."""
    name, modules = projection.read_modules(conn, slug)
    if name is None:
        raise InputError(
            f"no import of project {slug!r} in this ledger",
            hint="run kei import project PATH first (or pass the --name it was imported as)",
        )
    return name, modules
