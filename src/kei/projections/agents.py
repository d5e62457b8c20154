"""``agents``: one row per agent, folded from the lifecycle events with the domain's rules.

The rows answer ``kei agent list|tree|descendants|show`` and give the command side
(``kei.adapters.agent_service``) the few agents a command touches. The fold is
``kei.domain.agents.apply_payload``: this module loads the touched rows into a
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

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, select

from kei.domain.agents import AgentState, LedgerState, apply_payload
from kei.domain.events import (
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    OutcomeRecorded,
    Payload,
    occurred_us,
)
from kei.domain.recorded import RecordedEvent
from kei.projections import names
from kei.projections.base import PagedTable, deferred_index, insert_rows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = names.AGENTS
CHUNK: Final = 500
Row = dict[str, Any]
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

    def define(self, metadata: MetaData) -> list[Table]:
        self._table = agents_table(metadata, self.name)
        return [self._table]

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        decoded = [(e, e.payload()) for e in events]
        ids = {agent_of(p) for _, p in decoded}
        dnas = {p.dna for _, p in decoded if isinstance(p, AgentForked) and p.dna is not None}
        rows = {r["id"]: r for r in self._load(conn, ids, dnas)}
        state = state_of(rows.values())
        known = set(rows)
        dirty: set[str] = set()
        for event, payload in decoded:
            before = state.ignored
            apply_payload(state, payload, stream=event.stream, version=event.version)
            if state.ignored == before:
                _copy(rows, payload, event)
                dirty.add(agent_of(payload))
        self._write(conn, [rows[i] for i in sorted(dirty & known)], delete=True)
        self._write(conn, [rows[i] for i in sorted(dirty - known)], delete=False)

    def _load(self, conn: Connection, ids: set[str], dnas: set[str]) -> list[Row]:
        t = self.table
        found: dict[str, Row] = {}
        for column, keys in ((t.c.id, sorted(ids)), (t.c.dna, sorted(dnas))):
            for i in range(0, len(keys), CHUNK):
                query = select(t).where(column.in_(keys[i : i + CHUNK]))
                found.update((r["id"], dict(r)) for r in conn.execute(query).mappings())
        return list(found.values())

    def _write(self, conn: Connection, rows: list[Row], *, delete: bool) -> None:
        t = self.table
        for i in range(0, len(rows), CHUNK):
            chunk = rows[i : i + CHUNK]
            if delete:
                conn.execute(t.delete().where(t.c.id.in_([r["id"] for r in chunk])))
            insert_rows(conn, t, chunk)


def state_of(rows: Iterable[Row]) -> LedgerState:
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


def _copy(rows: dict[str, Row], payload: Payload, event: RecordedEvent) -> None:
    """Copy what the domain accepted, plus the fields it does not keep, into the row."""
    ts = occurred_us(payload, event.timestamp_us)
    match payload:
        case AgentForked():
            rows[payload.agent_id] = _new_row(payload, ts)
        case AgentCompleted():
            rows[payload.agent_id].update(status="done", summary=payload.summary, finished_us=ts)
        case AgentFailed():
            rows[payload.agent_id].update(status="failed", reason=payload.reason, finished_us=ts)
        case AgentMerged():
            row = rows[payload.agent_id]
            row.update(status="merged", finished_us=row["finished_us"] or ts)
        case OutcomeRecorded():
            rows[payload.agent_id].update(
                outcome=payload.outcome,
                escalation_depth=payload.escalation_depth,
                stub_count=payload.stub_count,
            )
        case _:
            return
    rows[agent_of(payload)]["stream_version"] = event.version


_AGENT_EVENTS: Final = (AgentForked, AgentCompleted, AgentFailed, AgentMerged, OutcomeRecorded)


def agent_of(payload: Payload) -> str:
    """The agent an agent event is about."""
    if not isinstance(payload, _AGENT_EVENTS):
        raise TypeError(f"{type(payload).__name__} is not an agent event")
    return payload.agent_id


def _new_row(p: AgentForked, ts: int) -> Row:
    row: Row = {"id": p.agent_id, **{f: getattr(p, f) for f in _FORK_FIELDS}}
    row.update(
        status="running",
        summary=None,
        reason=None,
        outcome=None,
        escalation_depth=None,
        stub_count=None,
        forked_us=ts,
        finished_us=None,
    )
    return row
