"""``projects``: what ``kei import project`` found, as of each project's latest run.

Folds the ``project.*`` events (``domain/events/project.py``): a module's
identification or finding replaces its row and clears its matches, each trait match
is added to its module's row, a plan phase replaces its row, a removal deletes one.
``kei import project PATH --report`` and ``--plan`` read it.

Tables (``<name>`` is ``projects``), keyed by the project's slug (its stream's last
segment):

- ``<name>_modules``: ``(slug, module_id)``; ``project`` (the name as imported),
  ``kind``, ``manifest_path``, ``name``, ``files``, ``sloc``, ``content_sha256``,
  ``languages`` (JSON list), ``matches`` (JSON list of ``[trait, confidence,
  methods, keywords]``, best first; floats as JSON numbers, which read back exactly),
  ``error`` (NULL, or why the manifest could not be read).
- ``<name>_phases``: ``(slug, phase_id)``; ``trait``, ``priority``, ``status``,
  ``module_ids`` (JSON list), ``agent_id`` (NULL until forked).
- ``<name>_runs``: ``slug``; the last run's ``project``, ``source``, ``commit`` and
  ``started_us`` (when its ``project.import.started`` was signed: the plan's date) and
  ``threshold`` (its plan threshold, as text: columns hold no floats).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, MetaData, String, Table, delete, insert, select, update

from kei.domain.events.project import (
    PROJECT_STREAM_PREFIX,
    ModuleIdentified,
    ModuleUnreadable,
    PlanPhase,
    ProjectImportStarted,
    ProjectItemRemoved,
    TraitMatched,
)
from kei.domain.log.recorded import RecordedEvent
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.manifests import kind_of
from kei.domain.project.plan import Phase
from kei.domain.project.traits import TraitScore
from kei.projections.base import KEY, MAYBE, NEEDED, ColumnSpec, table_columns
from kei.projections.defined import DefinedTable
from kei.projections.faults import faults_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = "projects"
_TEXT, _INT = String, BigInteger
MODULES: Final[tuple[ColumnSpec, ...]] = (
    ("slug", _TEXT, KEY), ("module_id", _TEXT, KEY), ("project", _TEXT, NEEDED),
    ("kind", _TEXT, NEEDED), ("manifest_path", _TEXT, NEEDED), ("name", _TEXT, NEEDED),
    ("files", _INT, NEEDED), ("sloc", _INT, NEEDED), ("content_sha256", _TEXT, NEEDED),
    ("languages", _TEXT, NEEDED), ("matches", _TEXT, NEEDED), ("error", _TEXT, MAYBE),
)  # fmt: skip
PHASES: Final[tuple[ColumnSpec, ...]] = (
    ("slug", _TEXT, KEY), ("phase_id", _TEXT, KEY), ("trait", _TEXT, NEEDED),
    ("priority", _TEXT, NEEDED), ("status", _TEXT, NEEDED), ("module_ids", _TEXT, NEEDED),
    ("agent_id", _TEXT, MAYBE),
)  # fmt: skip
RUNS: Final[tuple[ColumnSpec, ...]] = (
    ("slug", _TEXT, KEY), ("project", _TEXT, NEEDED), ("source", _TEXT, NEEDED),
    ("commit", _TEXT, MAYBE), ("started_us", _INT, NEEDED), ("threshold", _TEXT, NEEDED),
)  # fmt: skip


class Projects:
    """The project-import read model; see the module docstring."""

    version = 1
    event_types = frozenset({
        "project.import.started", "project.module.identified", "project.module.unreadable", "project.trait.matched",
        "project.plan.phase", "project.item.removed",
    })  # fmt: skip
    modules = DefinedTable()
    phases = DefinedTable()
    runs = DefinedTable()

    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def define(self, metadata: MetaData) -> list[Table]:
        self.modules = Table(f"{self.name}_modules", metadata, *table_columns(MODULES))
        self.phases = Table(f"{self.name}_phases", metadata, *table_columns(PHASES))
        self.runs = Table(f"{self.name}_runs", metadata, *table_columns(RUNS))
        self.faults = faults_table(metadata, self.name)
        return [self.modules, self.phases, self.runs, self.faults]

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        p = event.payload()
        slug = event.stream.removeprefix(PROJECT_STREAM_PREFIX)
        m = self.modules
        if isinstance(p, ProjectImportStarted):
            conn.execute(delete(self.runs).where(self.runs.c.slug == slug))
            conn.execute(insert(self.runs).values(slug=slug, project=p.project, source=p.source,
                                                  commit=p.commit, started_us=event.timestamp_us,
                                                  threshold=repr(p.threshold)))  # fmt: skip
        elif isinstance(p, ModuleIdentified | ModuleUnreadable):
            conn.execute(delete(m).where(m.c.slug == slug, m.c.module_id == p.module_id))
            conn.execute(insert(m).values(slug=slug, **_module_row(p)))
        elif isinstance(p, TraitMatched):
            where = (m.c.slug == slug, m.c.module_id == p.module_id)
            found = conn.execute(select(m.c.matches).where(*where)).scalar()
            if found is not None:
                row = [p.trait, p.confidence, list(p.methods), list(p.keywords)]
                conn.execute(
                    update(m).where(*where).values(matches=_dump([*json.loads(found), row]))
                )
        elif isinstance(p, PlanPhase):
            t = self.phases
            conn.execute(delete(t).where(t.c.slug == slug, t.c.phase_id == p.phase_id))
            conn.execute(insert(t).values(
                slug=slug, phase_id=p.phase_id, trait=p.trait, priority=p.priority,
                status=p.status, module_ids=_dump(list(p.module_ids)), agent_id=p.agent_id,
            ))  # fmt: skip
        elif isinstance(p, ProjectItemRemoved) and p.item != "skill":
            t, column = (
                (m, m.c.module_id) if p.item == "module" else (self.phases, self.phases.c.phase_id)
            )
            conn.execute(delete(t).where(t.c.slug == slug, column == p.item_id))

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            self.apply(conn, e)

    def read_modules(self, conn: Connection, slug: str) -> tuple[str | None, list[ModuleFacts]]:
        """The project's name as last imported, and its modules by id."""
        m = self.modules
        rows = conn.execute(select(m).where(m.c.slug == slug).order_by(m.c.module_id)).all()
        name = rows[0].project if rows else None
        return name, [_facts(r) for r in rows]

    def read_run(self, conn: Connection, slug: str) -> tuple[str, int, float] | None:
        """The last run's source, signing time (µs) and plan threshold."""
        t = self.runs
        r = conn.execute(select(t).where(t.c.slug == slug)).first()
        return None if r is None else (r.source, int(r.started_us), float(r.threshold))

    def read_phases(self, conn: Connection, slug: str) -> list[tuple[Phase, str | None]]:
        t = self.phases
        rows = conn.execute(select(t).where(t.c.slug == slug)).all()
        found = [
            (Phase(r.phase_id, r.trait, r.priority, r.status, tuple(json.loads(r.module_ids))),
             r.agent_id)
            for r in rows
        ]  # fmt: skip
        return sorted(found, key=lambda f: _phase_order(f[0].phase_id))


def _module_row(p: ModuleIdentified | ModuleUnreadable) -> dict[str, Any]:
    if isinstance(p, ModuleUnreadable):
        kind = kind_of(p.manifest_path)
        return dict(module_id=p.module_id, project=p.project, kind=kind,
                    manifest_path=p.manifest_path, name="", files=0, sloc=0, content_sha256="",
                    languages="[]", matches="[]", error=p.error)  # fmt: skip
    return dict(module_id=p.module_id, project=p.project, kind=p.kind,
                manifest_path=p.manifest_path, name=p.name, files=p.files, sloc=p.sloc,
                content_sha256=p.content_sha256, languages=_dump(list(p.languages)),
                matches="[]", error=None)  # fmt: skip


def _facts(r: Any) -> ModuleFacts:
    matches = tuple(
        TraitScore(t, float(c), tuple(ms), tuple(ks)) for t, c, ms, ks in json.loads(r.matches)
    )
    return ModuleFacts(
        module_id=r.module_id, kind=r.kind, manifest_path=r.manifest_path, name=r.name,
        files=int(r.files), sloc=int(r.sloc), content_sha256=r.content_sha256,
        languages=tuple(json.loads(r.languages)), matches=matches, error=r.error,
    )  # fmt: skip


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _phase_order(phase_id: str) -> tuple[int, int]:
    priority, _, n = phase_id.partition(".")
    rank = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}.get(priority, 4)
    return rank, int(n) if n.isdigit() else 0
