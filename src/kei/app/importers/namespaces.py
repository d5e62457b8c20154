"""A namespace per source database: rows of two kei-ledger databases never merge.

Upstream agent ids are unique inside one database only: kei-import-project writes
``import-phase-1-1`` in every project. So every import belongs to one *namespace*,
and the namespace is written into each carried event's ``Origin.ref``:
``<namespace>:agents/<id>``, ``<namespace>:agents/<id>#cost``,
``<namespace>:skill_invocations/<id>``. The rule:

1. **Which namespace.** A database already imported keeps the namespace of its
   rows already in kei: an upstream row is the kei agent whose imported fork has the
   same row ref and the same fork facts (``branch``, ``spec_sha``, ``started_ts``,
   which no upstream verb changes). A database seen for the first time takes
   ``--namespace NAME``, else the name of the project folder holding
   ``.claude/agents/ledger.sqlite`` (upstream's fixed place), else the file's stem.
   Imports made before namespaces existed carry ``agents/<id>`` refs: they are the
   empty namespace, and a re-run of such a database stays in it.
2. **Which kei id.** A row keeps its upstream id, unless kei already holds that id
   for anything else (another database's row, or an agent kei itself forked): then
   it becomes ``<namespace>:<id>`` (for the empty namespace, the name rule 1 would
   give), and the report names it. Skill invocations follow their agent's id.
3. **Lineage stays inside a database.** A parent is looked for among this
   database's agents and kei's own, never another database's.
4. **Deletions.** An agent or skill invocation an earlier run carried from this
   namespace whose row is gone upstream is named in the report; kei keeps what it
   carried. Imports made before namespaces all share the empty one, so a re-run of
   such a database names every pre-namespace row another database held as deleted.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Final

from msgspec import Struct, field
from msgspec.structs import replace

from kei.app.agent_writes import agent_stream
from kei.app.importers.kei_view import SOURCE
from kei.app.importers.report import ImportReport, shown
from kei.app.importers.upstream import US, Upstream, UpstreamAgent
from kei.app.ledger.ledger import Ledger
from kei.domain.events import AgentForked, SkillInvoked
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError

SEP: Final = ":"
LEGACY: Final = ("agents/", "skill_invocations/")
_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
Facts = tuple[str, str | None, int]


class Fork(Struct, frozen=True):
    """An agent an earlier kei-ledger import forked: its kei id, namespace, row, facts."""

    kei_id: str
    namespace: str
    ref: str
    facts: Facts


class Namespacing(Struct):
    """This run's namespace, the kei id of every row, and what the rows tell kei."""

    namespace: str
    prefix: str
    kei_ids: dict[str, str] = field(default_factory=dict)  # upstream id → kei id
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (row ref, kei id), new
    foreign: set[str] = field(default_factory=set)  # kei ids another database's rows hold
    mine: set[str] = field(default_factory=set)  # kei ids of this database's rows
    clashes: set[str] = field(default_factory=set)  # kei ids held by others, even prefixed
    deleted: list[Fork] = field(default_factory=list)

    def ref(self, table_ref: str) -> str:
        """``table_ref`` (``agents/x``) in this namespace, as ``Origin.ref`` holds it."""
        return f"{self.namespace}{SEP}{table_ref}" if self.namespace else table_ref


def split_ref(ref: str) -> tuple[str, str]:
    """(namespace, row ref) of an ``Origin.ref`` an import wrote."""
    if ref.startswith(LEGACY) or SEP not in ref:
        return "", ref
    namespace, rest = ref.split(SEP, 1)
    return namespace, rest


def checked_name(name: str) -> str:
    """A namespace given with ``--namespace``: 1–64 of ``A-Z a-z 0-9 . _ -``."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"namespace {shown(name)} is not 1–64 letters, digits, '.', '_' or '-'",
            hint="give a short name for the source database, e.g. the project's",
        )
    return name


def default_name(path: Path) -> str:
    """The project folder of ``<project>/.claude/agents/ledger.sqlite``, else the stem."""
    parts = path.absolute().parts
    name = parts[-4] if parts[-3:-1] == (".claude", "agents") and len(parts) > 3 else path.stem
    return _UNSAFE.sub("-", name).strip("-.")[:64] or "ledger"


def facts_of(agent: UpstreamAgent) -> Facts:
    return (agent.branch, agent.spec_sha, agent.started_ts * US)


def imported_rows(ledger: Ledger) -> tuple[list[Fork], list[Fork]]:
    """Every agent fork and skill invocation a kei-ledger import carried, from the log
    itself (a skill's ``Fork`` holds its name as ``kei_id`` and ``(name, None, time)``
    as its facts)."""
    forks: list[Fork] = []
    skills: list[Fork] = []
    for record in ledger.store.read_types(["agent.forked", "skill.invoked"]):
        payload = RecordedEvent.from_record(record).payload()
        origin = payload.origin if isinstance(payload, AgentForked | SkillInvoked) else None
        if origin is None or origin.source != SOURCE:
            continue
        namespace, ref = split_ref(origin.ref or "")
        when = origin.occurred_at_us or 0
        if isinstance(payload, AgentForked):
            facts = (payload.branch, payload.spec_sha, when)
            forks.append(Fork(payload.agent_id, namespace, ref, facts))
        elif isinstance(payload, SkillInvoked):
            name = payload.skill_name
            skills.append(Fork(name, namespace, ref, (name, None, when)))
    return forks, skills


def namespaced(
    ledger: Ledger, upstream: Upstream, given: str | None, default: str
) -> tuple[Upstream, Namespacing]:
    """``upstream`` with each row under its kei id and namespaced ref (rule 1–2)."""
    forks, invoked = imported_rows(ledger)
    rows = {(a.ref, facts_of(a)) for a in upstream.agents if a.id}
    rows |= {(s.ref, (s.skill_name, None, s.ts * US)) for s in upstream.skills}
    matched = Counter(f.namespace for f in forks + invoked if (f.ref, f.facts) in rows)
    if matched:
        namespace = matched.most_common(1)[0][0]
        if given is not None and given != namespace:
            raise InputError(
                f"{upstream.path} was imported before as namespace {namespace or '(none)'!r}, "
                f"not {given!r}",
                hint="run it again without --namespace: a database keeps its namespace",
            )
    else:
        namespace = given if given is not None else default
    names = Namespacing(namespace, namespace or default)
    same = {(f.ref, f.facts): f.kei_id for f in forks if f.namespace == namespace}
    names.mine = set(same.values())
    names.foreign = {f.kei_id for f in forks} - names.mine
    names.deleted = [
        f for f in forks + invoked if f.namespace == namespace and (f.ref, f.facts) not in rows
    ]
    ids = [a.id for a in upstream.agents if a.id]
    wanted = [agent_stream(i) for i in ids] + [agent_stream(_prefixed(names, i)) for i in ids]
    held = {s.removeprefix("agent/") for s in ledger.store.stream_versions(wanted)}
    agents = [_rename(names, a, same, held) for a in upstream.agents]
    skills = [
        replace(
            s,
            origin_ref=names.ref(s.ref),
            agent_id=names.kei_ids.get(s.agent_id, s.agent_id) if s.agent_id else s.agent_id,
        )
        for s in upstream.skills
    ]
    return replace(upstream, agents=agents, skills=skills), names


def _prefixed(names: Namespacing, upstream_id: str) -> str:
    return f"{names.prefix}{SEP}{upstream_id}"


def _rename(
    names: Namespacing, agent: UpstreamAgent, same: dict[tuple[str, Facts], str], held: set[str]
) -> UpstreamAgent:
    ref = names.ref(agent.ref)
    if not agent.id:
        return replace(agent, origin_ref=ref)
    kei_id = same.get((agent.ref, facts_of(agent)))
    if kei_id is None:
        kei_id = agent.id if agent.id not in held else _prefixed(names, agent.id)
        if kei_id in held:
            names.clashes.add(kei_id)
        else:
            held.add(kei_id)
            names.mine.add(kei_id)
            if kei_id != agent.id:
                names.renamed.append((ref, kei_id))
    names.kei_ids[agent.id] = kei_id
    return replace(agent, id=kei_id, origin_ref=ref)


def report_names(names: Namespacing, report: ImportReport) -> None:
    """Name the rows first imported under another id, and the rows deleted upstream."""
    report.namespace = names.namespace
    for ref, kei_id in names.renamed:
        why = (
            f"kei already holds that agent id for another row (another database's, or "
            f"its own agent): imported as {kei_id!r}, namespace {names.prefix!r}"
        )
        report.skip(ref, "agent id", why)
    for fork in names.deleted:
        agent = fork.ref.startswith("agents/")
        what, kept = ("agent", "agent") if agent else ("skill invocation", "its use of skill")
        why = (
            f"deleted upstream since an earlier import; kei keeps {kept} {fork.kei_id!r} "
            "as it was carried (the log is append-only)"
        )
        report.skip(names.ref(fork.ref), what, why)
