"""Project imports as events: ``kei import project PATH|URL`` (upstream kei-import-project).

Every event of one project lands on its stream, ``project/<slug>`` (``project_stream``),
appended at the version the importer read, so two imports of one project cannot
interleave. A run that finds nothing changed appends nothing. A run that does appends
``project.import.started``, then what changed (modules identified or unreadable, their
trait matches, skills extracted, plan phases, items removed) in batches, then
``project.import.completed``. A run killed between batches leaves a started event with
no completion; the next run appends only what is still missing.

A module is keyed by its manifest's path relative to the repository root
(``module_id``): a new ``project.module.identified`` for a module replaces its earlier
facts, its trait matches included (the matches that follow it in the log are its
matches). Skills are ``memory.written`` events in namespace ``skills/<slug>`` (kind
``skill``), appended in the same batch as the ``project.skill.extracted`` that records
their content hash, so memory search sees them and the leak matrix scans them.
"""

from __future__ import annotations

from typing import Final, Literal

from kei.domain.events.payload import Payload

PROJECT_STREAM_PREFIX: Final = "project/"
Matcher = Literal["tags", "regex"]
ItemKind = Literal["module", "skill", "phase"]
Priority = Literal["P0", "P1", "P2", "P3", "Pwip"]
PhaseStatus = Literal["scaffolding", "blocked-needs-review", "forked"]


class _OnProject(Payload, frozen=True, kw_only=True):
    """What every event of a project names first: the project, as imported."""

    project: str


class _OnModule(_OnProject, frozen=True, kw_only=True):
    """What every event about one module names next: its manifest's relative path."""

    module_id: str


class ProjectImportStarted(_OnProject, frozen=True, kw_only=True):
    """A run that found changes: what it read and how. ``source`` is the path or URL as
    given (a URL without credentials); ``commit`` the repository's HEAD when it is a git
    work tree; ``walker_sha256`` the digest of the walker's and matcher's settings; ``threshold``
    the confidence a module needed to join a plan phase."""

    source: str
    commit: str | None = None
    walker_sha256: str
    matcher: Matcher
    threshold: float = 0.5


class ModuleIdentified(_OnModule, frozen=True, kw_only=True):
    """One module, from its manifest: ``kind`` (rust-crate, npm-package,
    python-package, go-module), its ``name``, how many source ``files`` it holds, their
    source lines (``sloc``: code lines, comments and blanks excluded) and the SHA-256 of
    its sorted ``path\\0sha256`` lines (``content_sha256``)."""

    kind: str
    manifest_path: str
    name: str
    files: int
    sloc: int
    content_sha256: str
    languages: tuple[str, ...] = ()


class ModuleUnreadable(_OnModule, frozen=True, kw_only=True):
    """A manifest kei could not read (bad TOML or JSON, no usable name): a finding,
    never the end of the run (upstream aborted the whole import)."""

    manifest_path: str
    error: str


class TraitMatched(_OnModule, frozen=True, kw_only=True):
    """A trait the module's code looks like it implements, with the evidence:
    ``confidence = 0.6 × methods found / required + 0.4 × keywords found / keywords``,
    kept from 0.3. ``matcher_version`` names the matcher (``tags/1``: tree-sitter
    tags; ``regex/1``: upstream's Rust regexes)."""

    trait: str
    confidence: float
    methods: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    matcher_version: str


class SkillExtracted(_OnProject, frozen=True, kw_only=True):
    """A ``## `` section of the README or ``docs/`` written to memory as a skill: its
    memory ``key`` (``<stem>::<slug>``), the file it came from and the SHA-256 of the
    text written (before the leak matrix), so a re-run rewrites only what changed."""

    key: str
    source_path: str
    content_sha256: str


class ProjectItemRemoved(_OnProject, frozen=True, kw_only=True):
    """A module whose manifest is gone, a skill whose section is gone or a plan phase
    the plan no longer has, since the last run (a removed skill's memory key gets
    ``memory.forgotten`` in the same batch)."""

    item: ItemKind
    item_id: str


class PlanPhase(_OnProject, frozen=True, kw_only=True):
    """One phase of the port plan: confident modules of one trait (``P0``–``P3`` by
    the trait's priority, status ``scaffolding``, upstream's initial status) or a weak
    one to review (``Pwip``, ``blocked-needs-review``).
    ``forked``: ``kei import project --run-phase`` forked ``agent_id`` for it."""

    phase_id: str
    trait: str
    priority: Priority
    status: PhaseStatus
    module_ids: tuple[str, ...] = ()
    agent_id: str | None = None


class ProjectImportCompleted(_OnProject, frozen=True, kw_only=True):
    """The run's end: the SHA-256 of the markdown gap report of what the log now holds
    (the counts are the stream's to fold, not repeated here)."""

    report_sha256: str


def project_stream(slug: str) -> str:
    """The stream of one project's imports."""
    return f"{PROJECT_STREAM_PREFIX}{slug}"
