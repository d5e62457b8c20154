"""The tools that only read: each answers with the log ``position`` it was computed at
(the position its read models had folded to, or the log's head for the log itself).

Same services and answers as the CLI's ``--json`` output of the command of the same
name; lists are bounded (``MAX_ITEMS``), as a model's context is.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from msgspec.structs import asdict

from kei.adapters.mcp.calls import Answer, Calls
from kei.app.services import Services
from kei.domain.events.memory import DEFAULT_NAMESPACE

READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
MAX_ITEMS: Final = 200
ITEM_FIELDS: Final = ("namespace", "key", "kind", "value", "tags", "dna", "parent_dna",
                      "written_us", "position")  # fmt: skip


def register_reads(server: MCPServer, calls: Calls, services: Services) -> None:
    """Add every tool that reads; see ``docs/cli.md`` (``kei mcp serve``)."""
    for fn in _memory_tools(calls, services) + _log_tools(calls, services):
        server.add_tool(fn, annotations=READS, structured_output=True)


def item_dict(item: dict[str, Any]) -> Answer:
    return {k: item[k] for k in ITEM_FIELDS}


def _bounded(limit: int | None) -> int:
    return MAX_ITEMS if limit is None else max(1, min(limit, MAX_ITEMS))


def _memory_tools(calls: Calls, services: Services) -> list[Any]:
    async def memory_get(key: str, namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
        """The value under KEY (as `kei memory get`); `item` is null when there is none."""

        def work() -> tuple[int, Answer]:
            memory = services.memory()
            item = memory.get(namespace, key)
            found = None if item is None else item_dict(item)
            return memory.models.position(), {"item": found}

        return await calls.read(work)

    async def memory_query(
        namespace: str | None = None,
        kind: str | None = None,
        key_prefix: str | None = None,
        tag_any: list[str] | None = None,
        tag_all: list[str] | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Items by namespace, kind, key prefix and tags, newest first (as `kei memory query`)."""
        from kei.app.memory_writes import tags_of
        from kei.domain.memory.query import MemoryQuery

        q = MemoryQuery(namespace=namespace, kind=kind, key_prefix=key_prefix,
                        tag_any=tags_of(tag_any or []), tag_all=tags_of(tag_all or []),
                        limit=_bounded(limit))  # fmt: skip

        def work() -> tuple[int, Answer]:
            memory = services.memory()
            items = [item_dict(i) for i in memory.query(q)]
            return memory.models.position(), {"items": items}

        return await calls.read(work)

    async def memory_search(
        text: str, namespace: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """Items whose value holds every word of TEXT, best match first (as `kei memory search`)."""
        from kei.domain.memory.query import MemoryQuery

        q = MemoryQuery(namespace=namespace, limit=_bounded(limit))

        def work() -> tuple[int, Answer]:
            memory = services.memory()
            items = [item_dict(i) for i in memory.search(text, q)]
            return memory.models.position(), {"items": items}

        return await calls.read(work)

    return [memory_get, memory_query, memory_search]


def _log_tools(calls: Calls, services: Services) -> list[Any]:
    async def route_explain(decision_id: str, prompt: str = "") -> dict[str, Any]:
        """Re-derive a routing decision from the log as of its position (as `kei route explain`)."""

        def work() -> tuple[int, Answer]:
            routes = services.routes()
            x = routes.explain(decision_id, prompt)
            return routes.ledger.store.max_position(), {
                "decision_id": x.recorded.decision_id, "decided_at": x.position,
                "outcomes_before": x.outcomes_before, "rederived": not x.differences,
                "differences": [str(d) for d in x.differences],
                "recorded": msgspec.to_builtins(x.recorded),
            }  # fmt: skip

        return await calls.read(work)

    async def events_tail(
        n: int = 20, types: list[str] | None = None, streams: list[str] | None = None
    ) -> dict[str, Any]:
        """The latest N events (at most 200), oldest first, filtered by type and stream
        globs (as `kei events tail --json`)."""
        from kei.app.ledger.tail import TailFilter, event_dict, latest

        where = TailFilter(types=tuple(types or ()), streams=tuple(streams or ()))

        def work() -> tuple[int, Answer]:
            shown, head = latest(services.ledger.store, _bounded(n), where)
            position = 0 if head is None else head.position
            return position, {"events": [event_dict(e) for e in shown]}

        return await calls.read(work)

    async def verify_status() -> dict[str, Any]:
        """Check the log's links and hashes (`kei verify-chain --quick`): ok and findings."""

        def work() -> tuple[int, Answer]:
            ledger = services.ledger
            position = ledger.store.max_position()
            return position, ledger.verify(quick=True).to_dict()

        return await calls.read(work)

    async def agent_tree(root: str) -> dict[str, Any]:
        """ROOT and every agent below it, with status and current cost (as `kei agent tree`)."""

        def work() -> tuple[int, Answer]:
            return tree_answer(services, root)

        return await calls.read(work)

    async def budget_status() -> dict[str, Any]:
        """Each budget's period, spent, limit, percent, remaining, forecast and thresholds
        crossed (as `kei budget status`)."""
        from kei.app.budgets.status import status

        def work() -> tuple[int, Answer]:
            ledger = services.ledger
            position = ledger.store.max_position()  # the read models fold at least this far
            found = status(ledger, seal_key=services.seal_key, catalog=services.catalog)
            return position, {"budgets": [s.to_dict() for s in found]}

        return await calls.read(work)

    return [route_explain, events_tail, verify_status, agent_tree, budget_status]


def tree_answer(services: Services, root: str) -> tuple[int, Answer]:
    """``kei agent tree --json``'s rows in one object."""
    costs = services.costs()
    nodes = costs.tree(root, services.catalog, full=True)
    rows = [{"depth": n.depth, **n.row, "micro_cents": n.cost.micro_cents,
             "unverified_events": n.cost.unverified} for n in nodes]  # fmt: skip
    return costs.models.position(), {"root": root, "agents": rows}


def report_answer(services: Services, by: str) -> tuple[int, Answer]:
    """``kei cost report --json``'s rows and total."""
    costs = services.costs()
    report = costs.report(by, services.catalog)
    rows = [asdict(r) | {by: r.key} for r in report.rows[:MAX_ITEMS]]
    return costs.models.position(), {"by": by, "rows": rows, "row_count": len(report.rows),
                                     "total_micro_cents": report.total}  # fmt: skip
