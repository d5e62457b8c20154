"""The order ``kei agent tree`` shows agents in, from rows already read.

Depth first from the root, children in the order given (fork order), each agent once:
``seen`` keeps the walk finite even where raw events made a cycle of parents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kei.errors import UnknownAgentError

Row = dict[str, Any]


def walk(rows: Sequence[Row], root: str) -> list[tuple[int, Row]]:
    """``root`` and every row below it by ``parent_agent_id``, each with its depth."""
    by_id = {r["id"]: r for r in rows}
    if root not in by_id:
        raise UnknownAgentError(f"no agent with id {root}")
    children: dict[str, list[Row]] = {}
    for r in rows:
        if r["id"] != root and r["parent_agent_id"] is not None:
            children.setdefault(r["parent_agent_id"], []).append(r)
    out: list[tuple[int, Row]] = []
    seen: set[str] = set()
    stack = [(0, by_id[root])]
    while stack:
        depth, row = stack.pop()
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        out.append((depth, row))
        stack.extend((depth + 1, c) for c in reversed(children.get(row["id"], [])))
    return out
