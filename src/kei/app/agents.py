"""The agent commands over the ``agents`` read model: the reads (``list``, ``show``,
``tree``, ``descendants``) catch it up and query it; the writes are
``kei.app.agent_writes``, which decides from the streams alone (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import sqlalchemy as sa
from msgspec import Struct

from kei.app.agent_writes import AgentWriter, Outcome, agent_stream, dna_stream
from kei.app.ledger.ledger import Ledger
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.agents.tree import walk
from kei.projections.agents import Agents, Row

__all__ = [
    "TREE_COLUMNS", "AgentService", "Descendant", "Outcome", "Rows", "RowsFn",
    "agent_stream", "descendants", "dna_stream", "subtree_ids", "tree", "tree_rows",
]  # fmt: skip
Rows = list[dict[str, Any]]
_CHUNK: Final = 500


class AgentService(ReadModelService, AgentWriter):
    """The agent commands over one ledger and its ``agents`` read model.

    The writes (``fork``, ``done``, ``fail``, ``merged``, ``outcome``) are
    ``AgentWriter``'s, over ``self.ledger``: they decide from the streams, never from
    this read model, so there is one write path for the CLI, the hook and MCP."""

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


class Descendant(Struct, frozen=True):
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
