"""One project's stream folded (``fold``), and what a new run must append (``changes``).

The fold is what the read model holds too, computed from the stream alone so an
import decides from the log, never from a read model. ``changes`` compares a run's
findings with the fold: a module is appended again (identification or finding, then
its matches) when any of its facts or matches differ; a skill when its text's hash
differs; a phase when its trait, modules or status differ (a phase forked for the
same modules stays forked); anything the fold holds that the run did not find is
removed. Nothing changed: an empty list, and the run appends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
from msgspec import Struct, field

from kei.domain.events.payload import Payload
from kei.domain.events.project import (
    ModuleIdentified,
    ModuleUnreadable,
    PlanPhase,
    ProjectImportCompleted,
    ProjectImportStarted,
    ProjectItemRemoved,
    SkillExtracted,
    TraitMatched,
)
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.manifests import kind_of
from kei.domain.project.plan import Phase
from kei.domain.project.traits import TraitScore


class StoredPhase(Struct, frozen=True):
    phase: Phase
    agent_id: str | None = None


class ProjectState(Struct, kw_only=True):
    """A project's stream folded: modules by id, skill hashes by key, phases by id;
    ``walkers``: the walker digest (settings and matcher) of the run that identified
    each module, so a run with the same digest can trust its counts and matches."""

    project: str = ""
    source: str = ""
    modules: dict[str, ModuleFacts] = field(default_factory=dict)
    skills: dict[str, str] = field(default_factory=dict)
    phases: dict[str, StoredPhase] = field(default_factory=dict)
    runs_started: int = 0
    runs_completed: int = 0
    matcher_versions: dict[str, str] = field(default_factory=dict)
    walker: str = ""
    walkers: dict[str, str] = field(default_factory=dict)


def fold(payloads: Iterable[Payload], state: ProjectState | None = None) -> ProjectState:
    """Fold a project stream's payloads, in order, into ``state`` (or a new one)."""
    s = ProjectState() if state is None else state
    for p in payloads:
        apply(s, p)
    return s


def apply(s: ProjectState, p: Payload) -> None:
    """One event into the fold; types it does not know are ignored."""
    if isinstance(p, ProjectImportStarted):
        s.project, s.source, s.runs_started = p.project, p.source, s.runs_started + 1
        s.walker = p.walker_sha256
    elif isinstance(p, ProjectImportCompleted):
        s.runs_completed += 1
    elif isinstance(p, ModuleIdentified):
        s.walkers[p.module_id] = s.walker
        s.modules[p.module_id] = ModuleFacts(
            module_id=p.module_id, kind=p.kind, manifest_path=p.manifest_path, name=p.name,
            files=p.files, sloc=p.sloc, content_sha256=p.content_sha256, languages=p.languages,
        )  # fmt: skip
    elif isinstance(p, ModuleUnreadable):
        s.modules[p.module_id] = ModuleFacts(
            module_id=p.module_id, kind=kind_of(p.manifest_path),
            manifest_path=p.manifest_path, error=p.error,
        )  # fmt: skip
    elif isinstance(p, TraitMatched) and p.module_id in s.modules:
        m = s.modules[p.module_id]
        score = TraitScore(p.trait, p.confidence, p.methods, p.keywords)
        s.modules[p.module_id] = _with(m, (*m.matches, score))
        s.matcher_versions[p.module_id] = p.matcher_version
    elif isinstance(p, SkillExtracted):
        s.skills[p.key] = p.content_sha256
    elif isinstance(p, PlanPhase):
        phase = Phase(p.phase_id, p.trait, p.priority, p.status, p.module_ids)
        s.phases[p.phase_id] = StoredPhase(phase, p.agent_id)
    elif isinstance(p, ProjectItemRemoved):
        if p.item == "module":
            s.modules.pop(p.item_id, None)
        elif p.item == "skill":
            s.skills.pop(p.item_id, None)
        else:
            s.phases.pop(p.item_id, None)


def module_events(project: str, m: ModuleFacts, matcher_version: str) -> list[Payload]:
    """A module's facts as events: its identification (or finding), then its matches."""
    if m.error is not None:
        return [ModuleUnreadable(project=project, module_id=m.module_id,
                                 manifest_path=m.manifest_path, error=m.error)]  # fmt: skip
    out: list[Payload] = [
        ModuleIdentified(
            project=project, module_id=m.module_id, kind=m.kind, manifest_path=m.manifest_path,
            name=m.name, files=m.files, sloc=m.sloc, content_sha256=m.content_sha256,
            languages=m.languages,
        )
    ]  # fmt: skip
    out += [
        TraitMatched(project=project, module_id=m.module_id, trait=s.trait,
                     confidence=s.confidence, methods=s.methods, keywords=s.keywords,
                     matcher_version=matcher_version)
        for s in m.matches
    ]  # fmt: skip
    return out


def module_changes(
    s: ProjectState, project: str, found: Sequence[ModuleFacts], matcher_version: str
) -> list[list[Payload]]:
    """Per changed module, the events that record it; then one list per removal."""
    out: list[list[Payload]] = []
    seen = set()
    for m in found:
        seen.add(m.module_id)
        old = s.modules.get(m.module_id)
        same_matcher = (
            m.error is not None
            or not m.matches
            or (s.matcher_versions.get(m.module_id) == matcher_version)
        )
        if old != m or not same_matcher:
            out.append(module_events(project, m, matcher_version))
    out += [[_removed(project, "module", i)] for i in sorted(set(s.modules) - seen)]
    return out


def phase_changes(s: ProjectState, project: str, phases: Sequence[Phase]) -> list[Payload]:
    """The plan's phases that differ from the stored ones, then the removals."""
    out: list[Payload] = []
    for p in phases:
        old = s.phases.get(p.phase_id)
        if old is not None and old.phase.status == "forked" and _same_work(old.phase, p):
            continue
        if old is None or old.phase != p:
            out.append(PlanPhase(project=project, phase_id=p.phase_id, trait=p.trait,
                                 priority=p.priority, status=p.status,  # type: ignore[arg-type]
                                 module_ids=p.module_ids))  # fmt: skip
    ids = {p.phase_id for p in phases}
    out += [_removed(project, "phase", i) for i in sorted(set(s.phases) - ids)]
    return out


def _same_work(a: Phase, b: Phase) -> bool:
    return (a.trait, a.module_ids) == (b.trait, b.module_ids)


def _removed(project: str, item: str, item_id: str) -> ProjectItemRemoved:
    return ProjectItemRemoved(project=project, item=item, item_id=item_id)  # type: ignore[arg-type]


def _with(m: ModuleFacts, matches: tuple[TraitScore, ...]) -> ModuleFacts:
    return msgspec.structs.replace(m, matches=matches)
