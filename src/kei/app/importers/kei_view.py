"""What the kei ledger already holds that a kei-ledger import needs to know.

Read before planning, in this order, so every append can carry the version it
was planned against (a concurrent writer then makes the append fail cleanly):

1. The versions of ``agent/<id>`` for every upstream id, and the agent and cost
   events of each one that exists: whether its fork came from an import
   (``origin.source`` is ``kei-ledger``), its status, and the imported outcome and
   cost events a re-run compares upstream with. These events are folded into one
   domain ``LedgerState`` (``kei.domain.agents.rules.apply``).
2. The ``agents`` read model, caught up after step 1: the agents whose branch is
   an upstream parent branch (parent candidates, except those another source
   database's rows hold: ``foreign``, see ``namespaces.py``) and those holding an
   upstream DNA, plus the ``dna/<dna>`` streams that exist (claimed DNAs).
3. The ``skill/<name>`` streams of every upstream skill name: their versions, and
   the (ref, name, time) of each invocation an earlier import carried over.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from msgspec import Struct, field

from kei.app.agent_writes import agent_stream, dna_stream
from kei.app.agents import AgentService
from kei.app.importers.upstream import Upstream
from kei.app.ledger.ledger import Ledger
from kei.domain.agents.rules import AgentState, LedgerState, apply
from kei.domain.agents.skills import skill_stream
from kei.domain.events import REGISTRY, AgentForked, Origin, SkillInvoked, occurred_us
from kei.domain.log.recorded import RecordedEvent

SOURCE: Final = "kei-ledger"
READ_ONE_BY_ONE: Final = 64
AGENT_TYPES: Final = sorted(t for t in REGISTRY if t.startswith(("agent.", "cost.")))
SkillKey = tuple[str, str, int]


class Existing(Struct):
    """An upstream agent id that already has a stream in kei: its version and events."""

    agent_id: str
    version: int
    events: list[RecordedEvent] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return agent_stream(self.agent_id)

    @property
    def imported(self) -> bool:
        """Did an earlier kei-ledger import fork it (rather than kei itself)?"""
        if not self.events or self.events[0].type != "agent.forked":
            return False
        fork = self.events[0].payload()
        return isinstance(fork, AgentForked) and is_imported(fork.origin)

    def imported_of(self, types: frozenset[str], ref: str) -> list[RecordedEvent]:
        """This stream's events of ``types`` that an import carried over from ``ref``."""
        found = []
        for event in self.events:
            origin = _origin_of(event) if event.type in types else None
            if is_imported(origin) and origin is not None and origin.ref == ref:
                found.append(event)
        return found


class KeiView(Struct):
    """The part of kei an import touches; see the module docstring."""

    state: LedgerState = field(default_factory=LedgerState)
    existing: dict[str, Existing] = field(default_factory=dict)
    by_branch: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)
    skill_versions: dict[str, int] = field(default_factory=dict)
    skills_seen: set[SkillKey] = field(default_factory=set)
    tree: dict[str, list[str]] = field(default_factory=dict)  # branch → this database's ids
    clashes: set[str] = field(default_factory=set)


def is_imported(origin: Origin | None) -> bool:
    return origin is not None and origin.source == SOURCE


def load_view(
    ledger: Ledger, url: str, upstream: Upstream, foreign: frozenset[str] = frozenset()
) -> KeiView:
    """Read what kei holds for this upstream database (nothing is written to the log)."""
    view = KeiView()
    for agent in upstream.agents:
        view.tree.setdefault(agent.branch, []).append(agent.id)
    ids = [a.id for a in upstream.agents if a.id]
    versions = ledger.store.stream_versions([agent_stream(i) for i in ids])
    for agent_id in ids:
        if agent_stream(agent_id) in versions:
            view.existing[agent_id] = Existing(agent_id, versions[agent_stream(agent_id)])
    _load_existing(view, ledger)
    _load_agents(view, ledger, url, upstream, foreign)
    _load_skills(view, ledger, {s.skill_name for s in upstream.skills if s.skill_name})
    return view


def _load_existing(view: KeiView, ledger: Ledger) -> None:
    """Read the existing streams: one by one when few, else every agent event at once
    (one query beats thousands of round trips on a re-run of a large import)."""
    by_stream = {e.stream: e for e in view.existing.values()}
    if len(by_stream) <= READ_ONE_BY_ONE:
        for stream, existing in by_stream.items():
            existing.events = ledger.read_stream(stream)
    else:
        for record in ledger.store.read_types(AGENT_TYPES):
            found = by_stream.get(record.stream)
            if found is not None:
                found.events.append(RecordedEvent.from_record(record))
    for existing in view.existing.values():
        existing.events.sort(key=lambda e: e.version)
        for event in existing.events:
            apply(view.state, event)


def _load_agents(
    view: KeiView, ledger: Ledger, url: str, upstream: Upstream, foreign: frozenset[str]
) -> None:
    branches = sorted({a.parent_branch for a in upstream.agents if a.parent_branch is not None})
    dnas = sorted({a.dna for a in upstream.agents if a.dna and a.id not in view.existing})
    with AgentService(ledger) as service:
        t = service.caught_up().projection.table
        rows = service.rows_in(t.c.branch, branches) + service.rows_in(t.c.dna, dnas)
    for r in rows:
        if r["id"] not in view.state.agents:
            view.state.agents[r["id"]] = AgentState(
                r["id"], dna=r["dna"], status=r["status"], outcome=r["outcome"]
            )
        if r["dna"] is not None:
            view.state.by_dna.setdefault(r["dna"], r["id"])
            view.claimed[r["dna"]] = r["id"]
    wanted, seen = set(branches), set()
    for r in sorted(rows, key=lambda r: (r["forked_us"], r["id"])):
        if r["branch"] in wanted and r["id"] not in seen and r["id"] not in foreign:
            seen.add(r["id"])
            view.by_branch.setdefault(r["branch"], []).append((r["forked_us"], r["id"]))
    claims = ledger.store.stream_versions([dna_stream(d) for d in dnas])
    for dna in dnas:
        if dna_stream(dna) in claims:
            view.claimed.setdefault(dna, "?")


def _load_skills(view: KeiView, ledger: Ledger, names: Iterable[str]) -> None:
    for name in sorted(names):
        events = ledger.read_stream(skill_stream(name))
        view.skill_versions[skill_stream(name)] = events[-1].version if events else 0
        for event in events:
            if event.type != "skill.invoked":
                continue
            payload = event.payload()
            if not isinstance(payload, SkillInvoked) or not is_imported(payload.origin):
                continue
            ref = payload.origin.ref if payload.origin is not None else None
            when = occurred_us(payload, event.timestamp_us)
            view.skills_seen.add((ref or "", payload.skill_name, when))


def _origin_of(event: RecordedEvent) -> Origin | None:
    origin = getattr(event.payload(), "origin", None)
    return origin if isinstance(origin, Origin) else None
