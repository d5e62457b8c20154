"""``import_kei_ledger``: carry an upstream kei-ledger database (schema v1–v9) into kei.

Steps: read the upstream file read-only (``upstream.py``), read what kei already
holds (``kei_view.py``), plan every event with the domain rules (``plan_agents.py``,
``plan_costs.py`` and the skill rows here), then append the plan in chunks. Every
event carries ``Origin(source="kei-ledger", occurred_at_us=<upstream time>,
ref=<upstream row>)``, which is how a re-run recognises what it carried over:

- **Idempotent and incremental.** A second run appends nothing; after upstream
  moved on it appends exactly what is missing (see ``plan_agents.py``). A skill
  invocation is already imported when an imported ``skill.invoked`` on its stream
  has the same origin ref, skill name and upstream time.
- **Chunks.** Agents go in chunks of ``AGENT_CHUNK`` (each agent's events stay in one
  chunk, a parent's chunk before its children's), then skill invocations in chunks
  of ``SKILL_CHUNK`` events. Every event names the version it expects (0 for a new
  stream, the version read for an existing one), so a concurrent writer makes the
  run stop with ``ConcurrencyError``: whole chunks stay appended, and a re-run
  resumes where it stopped.
- ``dry_run`` plans and reports the same, and appends nothing.
- **Namespaces.** Rows of two source databases never merge: see ``namespaces.py``.
- **Nothing dropped without a word.** Every upstream table the import does not
  carry is named with its row count, and each ``prune_retirements`` row with its
  agent; a time that is not one of the known forms is named, never read as 1970.

Nothing here prints; the report says what happened and what could not carry over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Final, TypedDict, Unpack

from kei.app.importers.kei_view import SOURCE, KeiView, load_view
from kei.app.importers.namespaces import (
    Namespacing,
    checked_name,
    default_name,
    namespaced,
    report_names,
)
from kei.app.importers.plan_agents import AgentPlanner
from kei.app.importers.report import ImportReport
from kei.app.importers.upstream import RETIREMENTS, US, Upstream, UpstreamSkill, read_upstream
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents.rules import decide_skill
from kei.domain.agents.skills import skill_stream
from kei.domain.events import Origin, SkillInvoked
from kei.domain.events.limits import check_payload
from kei.errors import ConcurrencyError, KeiError

log = logging.getLogger(__name__)
AGENT_CHUNK: Final = 250
SKILL_CHUNK: Final = 1000


class LedgerOptions(TypedDict, total=False):
    """How to import: ``dry_run`` plans and appends nothing; ``namespace`` is the one a
    database seen for the first time gets (``namespaces.py``)."""

    dry_run: bool
    namespace: str | None


def import_kei_ledger(
    ledger: Ledger, url: str, path: str | Path, *, label: str | None = None,
    default_namespace: str | None = None, **options: Unpack[LedgerOptions],
) -> ImportReport:  # fmt: skip
    """Import the kei-ledger database at ``path`` into ``ledger`` (whose store is ``url``).

    Without a ``namespace``, a new database gets ``default_namespace``, else
    ``default_name(path)``; ``label`` names ``path`` in errors and the report (a bundle
    entry copied to a temporary file)."""
    dry_run = options.get("dry_run", False)
    namespace = options.get("namespace")
    given = None if namespace is None else checked_name(namespace)
    upstream = read_upstream(Path(path), label)
    fallback = default_namespace or default_name(Path(path))
    upstream, names = namespaced(ledger, upstream, given, fallback)
    report = ImportReport(upstream.path, upstream.schema_version, dry_run=dry_run)
    report_names(names, report)
    view = load_view(ledger, url, upstream, frozenset(names.foreign))
    view.clashes = names.clashes
    groups = AgentPlanner(view, report).plan(upstream.agents)
    skills = plan_skills(view, upstream.skills, report)
    name_tables(upstream, names, report)
    if not dry_run:
        _append(ledger, list(_batches(groups, skills)))
    log.info(
        "kei-ledger import of %s: %d events %s",
        upstream.path,
        report.events_appended,
        "planned (dry run)" if dry_run else "appended",
    )
    return report


def plan_skills(view: KeiView, rows: list[UpstreamSkill], report: ImportReport) -> list[NewEvent]:
    """One ``skill.invoked`` per upstream row not imported yet, at its stream's next version."""
    planned: list[NewEvent] = []
    for row in rows:
        if row.unreadable is not None:
            bad = row.unreadable
            report.skip(row.ref, bad.what, f"{bad.why}; not carried")
            continue
        when = row.ts * US
        if (row.ref, row.skill_name, when) in view.skills_seen:
            report.skills_already += 1
            continue
        duration = row.duration_ms
        payload = SkillInvoked(
            skill_name=row.skill_name,
            success=row.success,
            duration_ms=None if duration is None or duration < 0 else duration,
            agent_id=row.agent_id,
            trajectory_id=row.trajectory_id,
            origin=Origin(source=SOURCE, occurred_at_us=when, ref=row.ref),
        )
        try:
            decide_skill(payload)
            check_payload(payload)  # kei's field limits (domain/events/limits.py)
        except KeiError as exc:
            report.skip(row.ref, "skill invocation", str(exc))
            continue
        if duration is not None and duration < 0:
            report.skip(row.ref, f"duration_ms {duration}", "negative; carried as unknown")
        stream = skill_stream(row.skill_name)
        version = view.skill_versions.get(stream, 0)
        planned.append(NewEvent(stream, payload, version))
        view.skill_versions[stream] = version + 1
        view.skills_seen.add((row.ref, row.skill_name, when))
        report.skill_invocations += 1
        report.events_appended += 1
    return planned


def name_tables(upstream: Upstream, names: Namespacing, report: ImportReport) -> None:
    """Name every upstream table the import does not carry, and each retirement row."""
    for table, rows in upstream.other_tables.items():
        why = "kei-ledger import does not carry this table"
        if table == RETIREMENTS:
            why = "kei has no retirement event; each row is named below"
        report.skip(names.ref(table), f"table, {rows} rows", why)
    for agent_id, when in upstream.retirements:
        kei_id = names.kei_ids.get(agent_id, agent_id)
        report.skip(
            names.ref(f"{RETIREMENTS}/{agent_id}"),
            f"retired_ts {when}",
            f"kei-prune retired the agent; kei carries agent {kei_id!r}, not its retirement",
        )


def _batches(groups: list[list[NewEvent]], skills: list[NewEvent]) -> Iterator[list[NewEvent]]:
    for i in range(0, len(groups), AGENT_CHUNK):
        yield [event for group in groups[i : i + AGENT_CHUNK] for event in group]
    for i in range(0, len(skills), SKILL_CHUNK):
        yield skills[i : i + SKILL_CHUNK]


def _append(ledger: Ledger, batches: list[list[NewEvent]]) -> None:
    total = sum(len(b) for b in batches)
    done = 0
    for batch in batches:
        try:
            ledger.append(batch)
        except ConcurrencyError:
            raise ConcurrencyError(
                f"the kei ledger changed while the import ran; {done} of {total} events "
                "were appended (whole chunks), the rest were not",
                hint="run the import again: it carries over only what is missing",
            ) from None
        done += len(batch)
