"""Importing a project: walk, identify, match, extract skills, plan; append what changed.

The run decides from the project's own stream (``project/<slug>``), read checked and
folded by ``kei.domain.project.state``, never from a read model. It appends, in
order: ``project.import.started`` at the stream's version as read (a second importer
of the same project racing this one loses with a ``ConcurrencyError``), then each
changed module with its matches, each changed skill (``memory.written`` in
``skills/<slug>`` and ``project.skill.extracted``, one batch), the plan's changed
phases, and ``project.import.completed``, in batches of about ``BATCH`` events, each
at the version the previous one left. A run killed between batches leaves what it
appended, and the next run appends only the rest. Nothing changed: nothing appended.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
from msgspec import Struct, field

from kei.app.importers.project.source import Source, opened
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.memory_writes import check_write
from kei.domain.events.memory import MemoryForgotten, MemoryWritten, memory_stream
from kei.domain.events.project import (
    ProjectImportCompleted,
    ProjectImportStarted,
    ProjectItemRemoved,
    SkillExtracted,
    project_stream,
)
from kei.domain.project import state as project_state
from kei.domain.project.facts import ModuleFacts
from kei.domain.project.plan import make_plan
from kei.domain.project.report import gap_report
from kei.domain.project.skills import Skill, skills_of, slug
from kei.domain.project.traits import CONFIDENT
from kei.errors import InputError, LeakBlockedError, ProjectSourceError

log = logging.getLogger(__name__)
BATCH: Final = 500
README_NAMES: Final = ("README.md", "README", "readme.md")


class Tally(Struct):
    """How many the run found, and of those how many were new or changed, and how
    many the log held that the run no longer found."""

    found: int = 0
    changed: int = 0
    removed: int = 0


class ProjectImport(Struct):
    """What one run found and appended: modules and skills each as a ``Tally``."""

    project: str
    slug: str
    source: str
    commit: str | None
    dry_run: bool = False
    modules: Tally = field(default_factory=Tally)
    skills: Tally = field(default_factory=Tally)
    unreadable: int = 0
    phases_changed: int = 0
    events_appended: int = 0
    skipped_paths: list[tuple[str, str]] = field(default_factory=list)
    blocked_skills: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def project_slug(name: str) -> str:
    """The stream and namespace segment of a project name."""
    found = slug(name)
    if not found:
        raise InputError(f"project name {name!r} has no letters or digits", hint="pass --name")
    return found


def import_project(
    ledger: Ledger,
    source: str,
    *,
    name: str | None = None,
    matcher: str = "tags",
    threshold: float = CONFIDENT,
    dry_run: bool = False,
) -> ProjectImport:
    """Import the repository at ``source`` (a folder or a git URL) as project ``name``
    (default: the folder's or URL's last segment)."""
    match = _matcher(matcher)  # the extra is checked before a clone is made
    with opened(source) as src:
        return _import(ledger, src, name or src.name, (matcher, *match), threshold, dry_run)


def _import(
    ledger: Ledger,
    src: Source,
    name: str,
    matching: tuple[str, Any, str],
    threshold: float,
    dry_run: bool,
) -> ProjectImport:
    from kei.app.importers.project.modules import identify
    from kei.app.importers.project.walk import WalkSettings, walk

    key = project_slug(name)
    stream = project_stream(key)
    stored = ledger.read_stream_checked(stream)
    s = project_state.fold(e.payload() for e in stored)
    matcher, match, version = matching
    settings = WalkSettings()
    walked = walk(src.root, settings)
    digest = settings.sha256(version)
    known = {i: m for i, m in s.modules.items() if s.walkers.get(i) == digest}
    modules = identify(src.root, walked, match, known)
    skills = _skills(src.root, walked.files)
    plan = make_plan(modules, threshold)
    run = ProjectImport(
        name, key, src.shown, src.commit, dry_run=dry_run, modules=Tally(len(modules)),
        unreadable=sum(m.error is not None for m in modules), skills=Tally(len(skills)),
        skipped_paths=list(walked.skipped),
    )  # fmt: skip
    groups = _changes(s, run, modules, skills, plan.phases, version)
    if not groups:
        return run
    started = ProjectImportStarted(
        project=name, source=src.shown, commit=src.commit,
        walker_sha256=digest, matcher=matcher,  # type: ignore[arg-type]
        threshold=threshold,
    )  # fmt: skip
    report = gap_report(name, modules)
    completed = ProjectImportCompleted(
        project=name, report_sha256=hashlib.sha256(report.encode()).hexdigest()
    )
    batches = list(_batches([[NewEvent(stream, started)], *groups, [NewEvent(stream, completed)]]))
    run.events_appended = sum(len(g) for b in batches for g in b)
    if not dry_run:
        _append(ledger, stream, len(stored), batches, run)
    return run


EXTRA: Final = ("pathspec", "identify", "pygount")
TAGS_EXTRA: Final = ("tree_sitter", "tree_sitter_rust", "tree_sitter_python", "tree_sitter_go",
                     "tree_sitter_javascript", "tree_sitter_typescript")  # fmt: skip


def _require(modules: Sequence[str]) -> None:
    """Refuse in one line, before anything is read, when the extra is not installed."""
    from importlib.util import find_spec

    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise ProjectSourceError(
            f"kei import project needs the kei[project] extra ({', '.join(missing)} missing)",
            hint="pip install 'kei[project]'",
        )


def _matcher(name: str) -> tuple[Any, str]:
    _require([*EXTRA, *(TAGS_EXTRA if name == "tags" else ())])
    if name == "regex":
        from kei.domain.project import regex_matcher

        return (lambda files: regex_matcher.rust_evidence(
            d.decode("utf-8", "replace") for lang, d in files if lang == "Rust"
        )), regex_matcher.VERSION  # fmt: skip
    if name != "tags":
        raise InputError(f"unknown matcher {name!r}", hint="use tags or regex")
    from kei.app.importers.project import tags

    return tags.evidence, tags.VERSION


def _skills(root: Path, files: Sequence[Any]) -> list[Skill]:
    """README (the first of ``README_NAMES`` at the top) and every ``docs/**/*.md``."""
    paths = {f.path for f in files}
    docs = [n for n in README_NAMES if n in paths][:1]
    docs += sorted(
        f.path for f in files
        if f.path.startswith("docs/") and f.path.endswith(".md")
        and not f.path.rsplit("/", 1)[-1].startswith("_") and f.size <= 1 << 20
    )  # fmt: skip
    found: dict[str, Skill] = {}
    for path in docs:
        try:
            # not UTF-8 or a NUL (which no signed text may hold): U+FFFD in its place
            text = (root / path).read_bytes().decode("utf-8", "replace").replace("\0", "\ufffd")
        except OSError as e:
            log.warning("cannot read %s: %s", path, e.strerror)
            continue
        for skill in skills_of(path, text):
            found.setdefault(skill.key, skill)
    return list(found.values())


def _changes(
    s: project_state.ProjectState,
    run: ProjectImport,
    modules: Sequence[ModuleFacts],
    skills: Sequence[Skill],
    phases: Sequence[Any],
    version: str,
) -> list[list[NewEvent]]:
    """Every change as a group of events that must land together."""
    stream = project_stream(run.slug)
    groups: list[list[NewEvent]] = []
    for group in project_state.module_changes(s, run.project, modules, version):
        removed = isinstance(group[0], ProjectItemRemoved)
        run.modules.removed += removed
        run.modules.changed += not removed
        groups.append([NewEvent(stream, p) for p in group])
    namespace = f"skills/{run.slug}"
    seen = set()
    for skill in skills:
        seen.add(skill.key)
        value = skill.value()
        digest = hashlib.sha256(value.encode()).hexdigest()
        if s.skills.get(skill.key) == digest:
            continue
        run.skills.changed += 1
        memory = MemoryWritten(namespace=namespace, key=skill.key, value=value, kind="skill",
                               tags=("imported", run.slug))  # fmt: skip
        check_write(memory)
        extracted = SkillExtracted(project=run.project, key=skill.key,
                                   source_path=skill.source_path, content_sha256=digest)  # fmt: skip
        groups.append([NewEvent(memory_stream(namespace, skill.key), memory),
                       NewEvent(stream, extracted)])  # fmt: skip
    for key in sorted(set(s.skills) - seen):
        run.skills.removed += 1
        gone = MemoryForgotten(namespace=namespace, key=key, reason="section no longer in the docs")
        removed_item = ProjectItemRemoved(project=run.project, item="skill", item_id=key)
        groups.append(
            [NewEvent(memory_stream(namespace, key), gone), NewEvent(stream, removed_item)]
        )
    phase_events = project_state.phase_changes(s, run.project, phases)
    run.phases_changed = len(phase_events)
    groups += [[NewEvent(stream, p)] for p in phase_events]
    return groups


def _batches(groups: Sequence[list[NewEvent]]) -> Iterator[list[list[NewEvent]]]:
    """Groups packed into batches of about ``BATCH`` events, never splitting a group."""
    batch: list[list[NewEvent]] = []
    size = 0
    for group in groups:
        if batch and size + len(group) > BATCH:
            yield batch
            batch, size = [], 0
        batch.append(group)
        size += len(group)
    if batch:
        yield batch


def _append(
    ledger: Ledger,
    stream: str,
    version: int,
    batches: Sequence[list[list[NewEvent]]],
    run: ProjectImport,
) -> None:
    """Each batch at the version the previous left: the project stream's first event in
    a batch carries it, so a racing import of the project is refused, not interleaved.
    A batch the leak matrix blocks is appended group by group; a skill whose text a
    ``block`` rule refuses keeps only its ``project.skill.extracted`` (its hash), so the
    secret never reaches the log and the next run does not try again."""
    for batch in batches:
        try:
            version = _append_one(ledger, stream, version, [e for g in batch for e in g])
        except LeakBlockedError:
            for group in batch:
                try:
                    version = _append_one(ledger, stream, version, group)
                except LeakBlockedError as e:
                    kept = [n for n in group if n.stream == stream]
                    run.blocked_skills.append((_key_of(kept), str(e)))
                    run.events_appended -= len(group) - len(kept)
                    version = _append_one(ledger, stream, version, kept)


def _append_one(ledger: Ledger, stream: str, version: int, events: list[NewEvent]) -> int:
    first = next(i for i, e in enumerate(events) if e.stream == stream)
    events[first] = NewEvent(stream, events[first].payload, version)
    ledger.append(events)
    return version + sum(e.stream == stream for e in events)


def _key_of(events: Sequence[NewEvent]) -> str:
    p = events[0].payload if events else None
    return p.key if isinstance(p, SkillExtracted) else "?"
