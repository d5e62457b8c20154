"""How ``kei agent``, ``kei cost`` and ``kei skill`` look: plain lines when piped, rich
tables and trees on a terminal.

Pure functions, data in and text or a rich renderable out, so every form is tested
without a terminal (render into ``Console(file=io.StringIO())``). Rules:

- Plain lines are the parseable contract: upstream's shapes, tab-separated where
  upstream's were, one record per line, stable across versions.
- Rich renderables are for people. Above ``RICH_LIMIT`` nodes or rows the commands
  print the plain lines even on a terminal (a rich tree of 100,000 agents takes
  seconds to lay out); :func:`fits` says which.
- Stored text (ids, branches, names) is shown through ``safe``: as it is when it is
  printable, else JSON-quoted with escapes, so a value an older release signed with
  terminal escapes or newlines in it can neither drive the terminal nor forge a line.
- Money is summed exactly in micro-cents and rounded once, half up, when shown
  (``format_usd``). A cost that includes a catalog price the catalog cannot vouch for
  says so in every form: ``(unverified price)`` after a cost, ``UNVERIFIED (n of m)``
  in a report's price column.

Example::

    >>> price_mark(ReportRow("a", micro_cents=1, events=3, unverified=1))
    'UNVERIFIED (1 of 3)'
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from kei.app.ledger.tail import printable as safe
from kei.domain.agents.money import format_usd

if TYPE_CHECKING:
    from kei.app.cost_reads import Report, ReportRow, TreeNode
    from kei.domain.agents.skills import SkillMetrics

RICH_LIMIT: Final = 2_000
UNVERIFIED: Final = "(unverified price)"
STATUS_STYLE: Final = {"running": "yellow", "done": "green", "merged": "cyan", "failed": "bold red"}
ADVICE_STYLE: Final = {"validated": "green", "archive": "bold red", "reextract": "yellow"}
LIST_HEADER: Final = ("id", "status", "branch", "forked", "parent", "spec")


def fits(count: int) -> bool:
    """Is ``count`` nodes or rows small enough for a rich renderable?"""
    return count <= RICH_LIMIT


def utc_time(us: int | None) -> str:
    """Microseconds since the epoch as ``2026-11-25T10:57:36Z`` (``-`` when unknown)."""
    if us is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us // 1_000_000))


def _status(status: str) -> Text:
    return Text(safe(status), style=STATUS_STYLE.get(status, ""))


# -- kei agent tree -------------------------------------------------------------------


def cost_text(cost: ReportRow) -> str:
    """``$0.12``, or ``$0.12 (unverified price)`` when an unvouched catalog price is in it."""
    usd = format_usd(cost.micro_cents)
    return f"{usd} {UNVERIFIED}" if cost.unverified else usd


def tree_line(node: TreeNode) -> str:
    """``{2 spaces per depth}{id} [{status}] branch={branch} cost=$0.12``."""
    r = node.row
    indent = "  " * node.depth
    agent, status, branch = safe(r["id"]), safe(r["status"]), safe(r["branch"])
    return f"{indent}{agent} [{status}] branch={branch} cost={cost_text(node.cost)}"


def tree_text(nodes: Sequence[TreeNode]) -> str:
    return "".join(tree_line(n) + "\n" for n in nodes)


def agent_label(node: TreeNode) -> Text:
    r = node.row
    label = Text.assemble(
        (safe(r["id"]), "bold"), " ", _status(r["status"]), " ", (safe(r["branch"]), "dim"), "  "
    )
    label.append(format_usd(node.cost.micro_cents), style="bold")
    if node.cost.unverified:
        label.append(f" {UNVERIFIED}", style="yellow")
    return label


def agent_tree(nodes: Sequence[TreeNode]) -> Tree:
    """A rich tree of ``nodes`` (depth-first, each with its depth, the root first)."""
    root = Tree(agent_label(nodes[0]), guide_style="dim")
    path = [root]  # path[d]: the latest node at depth d, the parent of the next at d + 1
    for node in nodes[1:]:
        del path[node.depth :]
        path.append(path[-1].add(agent_label(node)))
    return root


# -- kei agent list -------------------------------------------------------------------


LIST_COLUMNS = ("id", "status", "branch", "forked_us", "parent_agent_id", "spec_sha")


def list_fields(r: dict[str, Any]) -> tuple[str, ...]:
    parent, spec = safe(r["parent_agent_id"] or "-"), safe((r["spec_sha"] or "-")[:12])
    return (
        safe(r["id"]),
        safe(r["status"]),
        safe(r["branch"]),
        utc_time(r["forked_us"]),
        parent,
        spec,
    )


def list_line(r: dict[str, Any]) -> str:
    """Upstream's line: ``id, status, branch, forked, parent=<id|->, spec=<sha[:12]|->``."""
    agent, status, branch, forked, parent, spec = list_fields(r)
    return f"{agent}\t{status}\t{branch}\t{forked}\tparent={parent}\tspec={spec}"


def agent_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(*LIST_HEADER)
    for r in rows:
        agent, status, *rest = list_fields(r)
        table.add_row(agent, _status(status), *rest)
    return table


# -- kei cost report ------------------------------------------------------------------


def price_mark(row: ReportRow) -> str:
    """``ok``, or what is wrong with the row's prices: unvouched, or none at all."""
    marks = [
        f"{name} ({n} of {row.events})"
        for name, n in (
            ("UNVERIFIED", row.unverified),
            ("UNPRICED", row.unpriced),
            ("SPEED UNPRICED", row.speed_unpriced),
        )
        if n
    ]
    return ", ".join(marks) or "ok"  # fmt: skip


def shown(result: Report, limit: int | None) -> list[ReportRow]:
    """The biggest ``limit`` rows (all when ``limit`` is None); rows are biggest first."""
    return result.rows if limit is None else result.rows[:limit]


def _report_fields(row: ReportRow) -> tuple[str, str, str, str, str]:
    usd = format_usd(row.micro_cents)
    return (safe(str(row.key)), str(row.events), usd, str(row.micro_cents), price_mark(row))


def report_text(result: Report, limit: int | None = None) -> str:
    """One tab-separated line per key, then the total; exact µ¢ and rounded dollars."""
    if not result.rows:
        return "(no costs)\n"
    lines = [f"{result.by}\tevents\tusd\tmicro_cents\tprice"]
    lines += ["\t".join(_report_fields(r)) for r in [*shown(result, limit), result.total_row]]
    return "\n".join(lines) + "\n"


def cost_table(result: Report, limit: int | None = None) -> Table:
    """The report as a table, TOTAL (over every row, shown or not) as its footer."""
    rows = shown(result, limit)
    caption = None
    if len(rows) < len(result.rows):
        caption = f"the {len(rows)} biggest of {len(result.rows)} rows; TOTAL covers all"
    table = Table(show_footer=True, caption=caption)
    total = result.total_row
    *footers, mark = _report_fields(total)
    for i, name in enumerate((result.by, "events", "usd", "micro_cents")):
        table.add_column(name, footer=footers[i], justify="left" if i == 0 else "right")
    table.add_column("price", footer=_mark(total, mark))
    for r in rows:
        *fields, mark = _report_fields(r)
        table.add_row(*fields, _mark(r, mark))
    return table


def _mark(row: ReportRow, mark: str) -> Text:
    return Text(mark, style="green" if mark == "ok" else "bold yellow")


# -- kei skill report -----------------------------------------------------------------


def skill_table(rows: Sequence[SkillMetrics]) -> Table:
    """Upstream's markdown columns, with the last use as a UTC time."""
    table = Table("skill", "total", "success%", "p50_ms", "p95_ms", "last used", "recommendation")
    for column in table.columns[1:5]:
        column.justify = "right"
    for r in rows:
        advice = r.recommendation.value
        table.add_row(
            safe(r.skill_name),
            str(r.total_invocations),
            f"{r.success_rate * 100:.1f}%",
            str(r.p50_duration_ms),
            str(r.p95_duration_ms),
            utc_time(r.last_invoked_us),
            Text(advice.upper() if advice == "archive" else advice, ADVICE_STYLE.get(advice, "")),
        )
    return table
