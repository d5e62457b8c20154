"""The agent commands' write side: decide with the domain rules, append race-proof.

Each command reads the version of the stream it will append to, then catches the
``agents`` projection up (so the rows it reads hold at least that version), loads
only the rows it touches (the agent, the owner of its DNA, its parent) into a
``LedgerState``, asks ``kei.domain.agents.rules.decide_*`` and appends what it returns.
Appends are conditional, so a racing writer can never land a move the table
forbids; a command that loses the race reads and decides again
(``app/ledger/retrying.py``, the ledger's ``retry`` budget), and only a rule the new
state breaks is an error:

- ``fork`` appends ``agent.forked`` at version 0 of ``agent/<id>`` and, when a DNA is
  given, ``agent.dna.claimed`` at version 0 of ``dna/<dna>`` in the same batch. Two
  racing forks of one id (or one DNA) cannot both land; the loser decides again and
  gets the message of coming second.
- Every other command appends at the version of ``agent/<id>`` it read first.

Nothing here prints; results are returned, refusals raised as ``KeiError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.agents.rules import (
    Accepted,
    AgentState,
    Decision,
    LedgerState,
    decide_done,
    decide_fail,
    decide_fork,
    decide_merged,
    decide_outcome,
)
from kei.domain.agents.tree import walk
from kei.domain.events import AgentForked, DnaClaimed, Payload
from kei.errors import ConcurrencyError
from kei.projections.agents import Agents, Row, state_of

Rows = list[dict[str, Any]]
_CHUNK: Final = 500


def agent_stream(agent_id: str) -> str:
    return f"agent/{agent_id}"


def dna_stream(dna: str) -> str:
    return f"dna/{dna}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: ``appended`` events (0 for a no-op) and a message for people."""

    message: str
    appended: int


class AgentService(ReadModelService):
    """The agent commands over one ledger and its ``agents`` read model."""

    def __init__(self, ledger: Ledger, *, seal_key: bytes | None = None) -> None:
        self.projection = Agents()
        super().__init__(ReadModels(ledger, self.projection, name="agents", seal_key=seal_key))

    # -- reads -------------------------------------------------------------------

    def caught_up(self) -> AgentService:
        self.models.catch_up()
        return self

    def rows(self, where: Any = None, order: Any = None, columns: Any = None) -> Rows:
        """Rows (or ``columns``) of ``agents_agents`` matching a Core condition (no catch-up)."""
        t = self.projection.table
        query = sa.select(*(columns or [t]))
        if where is not None:
            query = query.where(where)
        if order is not None:
            query = query.order_by(*order)
        return self.models.rows(query)

    def rows_in(self, column: Any, keys: list[str]) -> Rows:
        out: Rows = []
        for i in range(0, len(keys), _CHUNK):
            out += self.rows(column.in_(keys[i : i + _CHUNK]))
        return out

    def get(self, agent_id: str) -> Row | None:
        found = self.rows(self.projection.table.c.id == agent_id)
        return found[0] if found else None

    # -- commands ----------------------------------------------------------------

    def fork(self, request: AgentForked) -> Outcome:
        return retry_write(
            self.ledger.retry, lambda: self._fork(request), what=f"agent {request.agent_id}"
        )

    def _fork(self, request: AgentForked) -> Outcome:
        self.caught_up()
        t = self.projection.table
        keys = [k for k in (request.agent_id, request.parent_agent_id) if k is not None]
        touched = self.rows_in(t.c.id, keys)
        if request.dna is not None:
            touched += self.rows(t.c.dna == request.dna)
        decision = decide_fork(state_of(touched), request)
        batch = [NewEvent(agent_stream(request.agent_id), decision.payloads[0], 0)]
        if request.dna is not None:
            claim = DnaClaimed(dna=request.dna, agent_id=request.agent_id)
            batch.append(NewEvent(dna_stream(request.dna), claim, 0))
        try:
            self.ledger.append(batch)
        except ConcurrencyError:
            self._lost_fork(request)  # the rule error of coming second, if the claims say so
            raise  # otherwise decide again
        return Outcome(f"forked {request.agent_id} -> {request.branch}", len(batch))

    def _lost_fork(self, request: AgentForked) -> None:
        """Another fork landed first: refuse with the message of coming second.

        The streams' version-0 claims decide, not the read model, which may lag (or
        never show a stream holding only raw events): retrying could never win them.
        """
        state = LedgerState()
        store = self.ledger.store
        if store.stream_version(agent_stream(request.agent_id)) > 0:
            state.agents[request.agent_id] = AgentState(request.agent_id)
        elif request.dna is not None:
            claims = self.ledger.read_stream(dna_stream(request.dna))
            owner = claims[0].payload() if claims else None
            state.by_dna[request.dna] = owner.agent_id if isinstance(owner, DnaClaimed) else "?"
        decide_fork(state, request)

    def done(self, agent_id: str, summary: str) -> Outcome:
        return self._move(agent_id, lambda s: decide_done(s, agent_id, summary=summary), "done")

    def fail(self, agent_id: str, reason: str) -> Outcome:
        return self._move(agent_id, lambda s: decide_fail(s, agent_id, reason=reason), "failed")

    def merged(self, agent_id: str) -> Outcome:
        return self._move(agent_id, lambda s: decide_merged(s, agent_id), "merged")

    def outcome(
        self,
        agent_id: str,
        outcome: str,
        escalation_depth: int | None = None,
        stub_count: int | None = None,
    ) -> Outcome:
        def decide(state: LedgerState) -> Decision:
            return decide_outcome(
                state,
                agent_id,
                outcome=outcome,
                escalation_depth=escalation_depth,
                stub_count=stub_count,
            )

        return self._move(agent_id, decide, f"outcome {outcome}")

    def _move(self, agent_id: str, decide: Any, what: str) -> Outcome:
        return retry_write(
            self.ledger.retry,
            lambda: self._move_once(agent_id, decide, what),
            what=f"agent {agent_id}",
        )

    def _move_once(self, agent_id: str, decide: Any, what: str) -> Outcome:
        stream = agent_stream(agent_id)
        version = self.ledger.store.stream_version(stream)
        self.caught_up()
        row = self.get(agent_id)
        decision = decide(state_of([] if row is None else [row]))
        if not isinstance(decision, Accepted):
            return Outcome(decision.message, 0)
        payloads: tuple[Payload, ...] = decision.payloads
        batch = [NewEvent(stream, p, version + i) for i, p in enumerate(payloads)]
        self.ledger.append(batch)  # ConcurrencyError: another writer came first
        return Outcome(f"agent {agent_id} -> {what}", len(batch))


# -- read answers (after ``caught_up``) ---------------------------------------------


TREE_COLUMNS: Final = ("id", "parent_agent_id", "status", "branch")
RowsFn = Callable[..., Rows]  # ``rows(where, order=..., columns=...)``, as ``AgentService.rows``


def subtree_ids(table: sa.Table, root: str) -> sa.Select[Any]:
    """The ids of ``root`` and every agent below it by parent agent id, as one recursive
    query to embed in another (``IN``); UNION keeps it finite even on a log whose raw
    events form a cycle."""
    sub = sa.select(table.c.id).where(table.c.id == root).cte("sub", recursive=True)
    sub = sub.union(sa.select(table.c.id).where(table.c.parent_agent_id == sub.c.id))
    return sa.select(sub.c.id)


def tree(service: AgentService, root: str, *, full: bool = True) -> list[tuple[int, Row]]:
    """``root`` and every agent below it (see :func:`tree_rows`), from ``service``'s table."""
    return tree_rows(service.rows, service.projection.table, root, full=full)


def tree_rows(
    rows: RowsFn, table: sa.Table, root: str, *, full: bool = True, extra: Sequence[Any] = ()
) -> list[tuple[int, Row]]:
    """``root`` and every agent below it by parent agent id, depth first, children in
    fork order, each with its depth (whole rows, or only ``TREE_COLUMNS``, plus the
    ``extra`` labelled columns). One query (:func:`subtree_ids`), then
    ``kei.domain.agents.tree.walk``. ``rows`` reads ``table``, so any service whose read
    model holds the agents table can answer."""
    columns = [*([table] if full else [table.c[c] for c in TREE_COLUMNS]), *extra]
    where, order = table.c.id.in_(subtree_ids(table, root)), (table.c.forked_us, table.c.id)
    return walk(rows(where, order=order, columns=columns), root)


@dataclass(frozen=True, slots=True)
class Descendant:
    depth: int
    relation: str  # "fork" (fork_parent is the DNA above) or "spawn" (creator is)
    via: str
    row: Row


def descendants(service: AgentService, dna: str, max_depth: int | None = None) -> list[Descendant]:
    """Agents forked from or created by ``dna``, then theirs, level by level."""
    t = service.projection.table
    out: list[Descendant] = []
    seen: set[str] = set()
    frontier, depth = [dna], 1
    while frontier and (max_depth is None or depth <= max_depth):
        found = service.rows_in(t.c.fork_parent, frontier) + service.rows_in(t.c.creator, frontier)
        level = {r["id"]: r for r in found if r["id"] not in seen}
        wanted = set(frontier)
        for r in sorted(level.values(), key=lambda r: (r["forked_us"], r["id"])):
            fork = r["fork_parent"] in wanted
            via = r["fork_parent"] if fork else r["creator"]
            out.append(Descendant(depth, "fork" if fork else "spawn", via, r))
        seen.update(level)
        frontier = sorted({r["dna"] for r in level.values() if r["dna"] is not None})
        depth += 1
    return out
