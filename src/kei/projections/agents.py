"""``agents``: one row per agent, folded from the lifecycle events with the domain's rules.

The rows answer ``kei agent list|tree|descendants|show`` and give the command side
(``kei.app.agents``) the few agents a command touches. The fold is
``kei.domain.agents.rules.apply_payload``: this module loads the touched rows into a
``LedgerState``, lets the domain accept or skip each event (a log written by racing
writers folds the same way everywhere) and copies the accepted events' extra fields
(branch, lineage, times, outcome details) into the rows. ``apply_page`` folds a whole
page with two reads and two writes per chunk of agents.

Table ``agents_agents`` (times are integer microseconds since the epoch):
``id`` (primary key), ``branch``, ``parent_agent_id``, ``parent_branch``, ``spec_sha``,
``worktree``, ``dna``, ``creator``, ``fork_parent``, ``status``, ``summary`` (done),
``reason`` (failed), ``outcome``, ``escalation_depth``, ``stub_count``, ``forked_us``,
``finished_us`` (first done/fail; merge keeps it), ``stream_version`` (version of the
last event applied to the agent). Indexed on dna, parent agent, fork parent, creator,
status and fork time, the lookups of the commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

from kei.domain.agents.state import AgentState, LedgerState, fold_payload
from kei.domain.events import (
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    OutcomeRecorded,
    Payload,
)
from kei.domain.log.recorded import RecordedEvent
from kei.projections import names
from kei.projections.base import KeyLookup, PagedTable, deferred_index

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = names.AGENTS
CHUNK: Final = 512
Row = dict[str, Any]  # a row as the services read it, by column name
Cells = list[Any]  # a row as the fold keeps it: in column order, cheaper by the million
_FORK_FIELDS: Final = (
    "branch",
    "parent_agent_id",
    "parent_branch",
    "spec_sha",
    "worktree",
    "dna",
    "creator",
    "fork_parent",
)


# Where the fold finds the columns it changes in ``Cells``:
_ID, _DNA, _STATUS, _SUMMARY, _REASON, _OUTCOME, _DEPTH, _STUBS = 0, 6, 9, 10, 11, 12, 13, 14
_FINISHED, _VERSION = 16, 17


def agents_table(metadata: MetaData, name: str = NAME) -> Table:
    """The ``<name>_agents`` table, defined once for both stores."""
    t = f"{name}_agents"
    return Table(
        t,
        metadata,
        Column("id", String, primary_key=True),
        *(Column(f, String) for f in _FORK_FIELDS),
        Column("status", String, nullable=False),
        Column("summary", String),
        Column("reason", String),
        Column("outcome", String),
        Column("escalation_depth", BigInteger),
        Column("stub_count", BigInteger),
        Column("forked_us", BigInteger, nullable=False),
        Column("finished_us", BigInteger),
        Column("stream_version", BigInteger, nullable=False),
        Index(f"{t}_dna_idx", "dna"),  # the fold looks agents up by DNA
        *(
            deferred_index(f"{t}_{c}_idx", c)
            for c in ("parent_agent_id", "fork_parent", "creator", "status", "forked_us")
        ),
    )


class Agents(PagedTable):
    """The agents read model; see the module docstring."""

    version = names.AGENTS_VERSION
    event_types = frozenset(
        {"agent.forked", "agent.completed", "agent.failed", "agent.merged", "agent.outcome"}
    )

    def __init__(self, name: str = NAME) -> None:
        self.name = name
        self._by: tuple[KeyLookup, KeyLookup] | None = None

    def main_table(self, metadata: MetaData) -> Table:
        return agents_table(metadata, self.name)

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        payloads = _decode(events)
        ids = {p.agent_id for p in payloads}
        dnas = {p.dna for p in payloads if type(p) is AgentForked and p.dna is not None}
        rows = self._load(conn, ids, dnas)
        state = _state_of_lists(rows.values())
        known = set(rows)
        dirty: set[str] = set()
        for event, payload in zip(events, payloads, strict=True):
            if fold_payload(state, payload, stream=event.stream, version=event.version):
                _copy(rows, payload, event)
                dirty.add(payload.agent_id)
        self._replace(conn, [rows[i] for i in sorted(dirty & known)])
        self.insert(conn, [tuple(rows[i]) for i in sorted(dirty - known)])

    def _load(self, conn: Connection, ids: set[str], dnas: set[str]) -> dict[str, Cells]:
        """The stored rows of these agents and of the agents holding these DNAs."""
        by_id, by_dna = self._lookups()
        found = {r[_ID]: list(r) for r in by_id(conn, sorted(ids))}
        found.update((r[_ID], list(r)) for r in by_dna(conn, sorted(dnas)))
        return found

    def _lookups(self) -> tuple[KeyLookup, KeyLookup]:
        """Look-ups by id and by DNA, made once per ``define``, kept on the instance."""
        t = self.table
        if self._by is None or self._by[0].table is not t:
            self._by = (KeyLookup(t, "id", CHUNK), KeyLookup(t, "dna", CHUNK))
        return self._by

    def _replace(self, conn: Connection, rows: list[Cells]) -> None:
        """Rewrite rows already stored (delete, then insert the new values)."""
        t = self.table
        for i in range(0, len(rows), CHUNK):
            ids = [r[_ID] for r in rows[i : i + CHUNK]]
            conn.execute(t.delete().where(t.c.id.in_(ids)))
        self.insert(conn, [tuple(r) for r in rows])


def state_of(rows: Iterable[Mapping[str, Any]]) -> LedgerState:
    """The domain state of these rows: what ``decide_*`` and the fold need."""
    state = LedgerState()
    for r in rows:
        state.agents[r["id"]] = AgentState(
            r["id"],
            dna=r["dna"],
            status=r["status"],
            summary=r["summary"],
            reason=r["reason"],
            outcome=r["outcome"],
        )
        if r["dna"] is not None:
            state.by_dna[r["dna"]] = r["id"]
    return state


def _state_of_lists(rows: Iterable[Cells]) -> LedgerState:
    """``state_of`` for rows held as lists in column order, as the fold keeps them."""
    state = LedgerState()
    for r in rows:
        agent_id, dna = r[_ID], r[_DNA]
        state.agents[agent_id] = AgentState(
            agent_id, dna=dna, status=r[_STATUS], summary=r[_SUMMARY], reason=r[_REASON],
            outcome=r[_OUTCOME],
        )  # fmt: skip
        if dna is not None:
            state.by_dna[dna] = agent_id
    return state


_AGENT_EVENTS: Final = (AgentForked, AgentCompleted, AgentFailed, AgentMerged, OutcomeRecorded)
_AGENT_TYPES: Final = frozenset(_AGENT_EVENTS)
AgentPayload = AgentForked | AgentCompleted | AgentFailed | AgentMerged | OutcomeRecorded


def _decode(events: Sequence[RecordedEvent]) -> list[AgentPayload]:
    """The events' payloads; TypeError for a payload that is not an agent event."""
    payloads = [e.payload() for e in events]
    for p in payloads:
        if type(p) not in _AGENT_TYPES:  # one set lookup, not a call per event
            agent_of(p)
    return cast("list[AgentPayload]", payloads)


def _copy(rows: dict[str, Cells], p: AgentPayload, event: RecordedEvent) -> None:
    """Copy what the domain accepted, plus the fields it does not keep, into the row."""
    origin = p.origin  # occurred_us, inlined: this runs once per agent event of the log
    ts = event.timestamp_us
    if origin is not None and origin.occurred_at_us is not None:
        ts = origin.occurred_at_us
    match p:
        case AgentForked():
            row = rows[p.agent_id] = _new_row(p, ts)
        case AgentCompleted():
            row = rows[p.agent_id]
            row[_STATUS], row[_SUMMARY], row[_FINISHED] = "done", p.summary, ts
        case AgentFailed():
            row = rows[p.agent_id]
            row[_STATUS], row[_REASON], row[_FINISHED] = "failed", p.reason, ts
        case AgentMerged():
            row = rows[p.agent_id]
            row[_STATUS], row[_FINISHED] = "merged", row[_FINISHED] or ts
        case OutcomeRecorded():
            row = rows[p.agent_id]
            row[_OUTCOME], row[_DEPTH], row[_STUBS] = p.outcome, p.escalation_depth, p.stub_count
    row[_VERSION] = event.version


def agent_of(payload: Payload) -> str:
    """The agent an agent event is about."""
    if not isinstance(payload, _AGENT_EVENTS):
        raise TypeError(f"{type(payload).__name__} is not an agent event")
    return payload.agent_id


def _new_row(p: AgentForked, ts: int) -> Cells:
    """A just-forked agent's row, in column order: running, no outcome yet."""
    return [
        p.agent_id, p.branch, p.parent_agent_id, p.parent_branch, p.spec_sha, p.worktree,
        p.dna, p.creator, p.fork_parent, "running", None, None, None, None, None, ts, None,
        None,  # stream_version, set by _copy
    ]  # fmt: skip
