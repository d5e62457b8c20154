"""``kei cost report`` and ``kei agent tree``, the reads users run most, in plain SQL.

On a ledger of 100,000 agents, importing SQLAlchemy takes longer (0.2 s) than either
answer. So these two queries are plain SQL, one text for SQLite and PostgreSQL, run on
the store's own connection (``EventStore.select``). The read models are still defined
once with SQLAlchemy Core (``kei.projections``) and kept by the projection engine:
:func:`caught_up` asks the state table whether ``agents`` and ``costs`` stand at the
log's head, at this code's versions, with the indexes the tree relies on, and loads the
engine (and SQLAlchemy with it) only when they do not.

Money follows every report's rules: only ``current`` cost rows count, so an amended
cost counts once, at its latest amount; sums are exact integer micro-cents; a catalog
price counts as unverified unless the catalog still vouches for its entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from msgspec import Struct, field
from msgspec.structs import asdict

from kei.adapters.store.base import EventStore
from kei.adapters.store.dialect import SQLITE, Dialect
from kei.domain.agents.tree import walk
from kei.domain.catalog.catalog import Catalog
from kei.domain.claude_code.blocks import Block, Spend, Tally, blocks
from kei.errors import InputError
from kei.projections import names

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger

GROUPS: Final = ("agent", "provider", "model", "day", "month", "session", "project", "block")
NONE: Final = "-"  # the row of costs that name no session or project
_COLUMN: Final = {
    "agent": "agent_id", "provider": "provider", "model": "model", "day": "day",
    "month": "substr(day, 1, 7)", "session": f"coalesce(session, '{NONE}')",
    "project": f"coalesce(project, '{NONE}')",
}  # fmt: skip
TREE_COLUMNS: Final = ("id", "parent_agent_id", "status", "branch")
_VERSIONS: Final = {names.AGENTS: names.AGENTS_VERSION, names.COSTS: names.COSTS_VERSION}
_FOLDED: Final = (names.AGENTS, names.COSTS)


class ReportRow(Tally):
    """One row of a report: its key and its sum (``Tally``: amounts and price kinds)."""

    key: str


class Report(Struct):
    by: str
    rows: list[ReportRow] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)  # ``--by block``: one per row
    # costs priced at standard rates for want of rates at their speed, per model
    speed_models: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(r.micro_cents for r in self.rows)

    @property
    def total_row(self) -> ReportRow:
        """Every row summed exactly: the report's TOTAL line."""
        total = ReportRow("TOTAL")
        for r in self.rows:
            total.add(r)
        return total


class Window(Struct, frozen=True):
    """What a report covers, ``since_us <= call_us < until_us`` (None: open-ended), and
    the clock that says which 5-hour block is still active (None: the wall clock)."""

    since_us: int | None = None
    until_us: int | None = None
    now_us: int | None = None

    def sql(self) -> tuple[str, list[int]]:
        """The SQL condition on ``call_us`` (to append to a WHERE), and its values."""
        parts = [(" AND call_us >= ?", self.since_us), (" AND call_us < ?", self.until_us)]
        given = [(s, v) for s, v in parts if v is not None]
        return "".join(s for s, _ in given), [v for _, v in given]


ALL_TIME: Final = Window()


class TreeNode(Struct, frozen=True):
    """One line of ``kei agent tree``: the agent's row, its depth and its current cost."""

    depth: int
    row: dict[str, Any]
    cost: ReportRow


# -- freshness ---------------------------------------------------------------------------


def caught_up(
    ledger: Ledger, *, seal_key: bytes | None = None, only: Sequence[str] | None = None
) -> None:
    """Make sure ``agents`` and ``costs`` (or ``only`` these) answer for the whole log
    (see the docstring).

    With ``seal_key`` the engine always runs: it checks the seals of the read models a
    command reads (a full digest of their tables: ``only=["costs"]`` for a report) and
    rebuilds from the log one that does not match. Without it, the plain-SQL check
    below still makes sure the log holds the event the read models last folded; an
    edited row goes unnoticed."""
    if seal_key is None and is_fresh(ledger.store) and _faults_told(ledger.store):
        return
    from kei.app.readmodels import ReadModels
    from kei.projections.agents import Agents
    from kei.projections.costs import Costs

    with ReadModels(ledger, Agents(), Costs(), name="costs", seal_key=seal_key) as models:
        models.catch_up(None if only is None else list(only))


def _faults_told(store: EventStore) -> bool:
    """Warn of the events either read model skipped (``projections/faults.py``); False
    when that cannot be read (no faults tables yet: the engine makes them)."""
    from kei.projections import faults  # SQLAlchemy's table types: not on the quick paths

    try:
        rows = store.select(faults.report_sql(_FOLDED))
    except Exception:
        return False
    faults.warn(_FOLDED, rows)
    return True


def is_fresh(store: EventStore) -> bool:
    """Both read models at the head, at this code's versions, with the tree's indexes,
    and the event they last folded still in the log with the same seq and hash (after
    a truncated log the head may be back at their position with another event there)."""
    marks = ",".join("?" * len(_VERSIONS))
    sql = f"SELECT name, version, position, seq, hash FROM kei_projections WHERE name IN ({marks})"
    try:
        rows = store.select(sql, list(_VERSIONS))
        indexes = _index_names(store)
    except Exception:  # no state table yet, or any other surprise: let the engine decide
        return False
    found = {n: (v, p) for n, v, p, _, _ in rows}
    head = store.max_position()
    wanted = {n: (v, head) for n, v in _VERSIONS.items()}
    if found != wanted or not set(names.TREE_INDEXES) <= indexes:
        return False
    points = {(s, None if h is None else bytes(h)) for _, _, _, s, h in rows}
    if head == 0:
        return points == {(None, None)}
    return holds(store, head, points)


def holds(store: EventStore, position: int, points: set[tuple[Any, bytes | None]]) -> bool:
    """Does the log hold, at ``position``, the one event every state row names?"""
    last = store.read(after=position - 1, limit=1)
    if len(points) != 1 or not last or last[0].position != position:
        return False
    return points == {(last[0].seq, last[0].hash)}


def _index_names(store: EventStore) -> set[str]:
    marks = ",".join("?" * len(names.TREE_INDEXES))
    sql = (
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({marks})"
        if Dialect.of(store.url) is SQLITE
        else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        f"AND indexname IN ({marks})"
    )
    return {r[0] for r in store.select(sql, names.TREE_INDEXES)}


# -- the reads ---------------------------------------------------------------------------


def report(store: EventStore, by: str, catalog: Catalog, window: Window = ALL_TIME) -> Report:
    """Current cost events in ``window`` summed exactly per ``by`` key, biggest first;
    ``block`` rows are 5-hour windows, oldest first, and an alias counts under its
    catalog model (``--by model``)."""
    if by not in GROUPS:
        raise InputError(f"unknown grouping {by!r}; use one of {', '.join(GROUPS)}")
    where, times = window.sql()
    unvouched, params = unvouched_sql(catalog)
    given = "CASE WHEN price_entry_id IS NULL AND unpriced = 0 THEN 1 ELSE 0 END"
    flags = f"CASE WHEN {unvouched} THEN 1 ELSE 0 END"
    if by == "block":
        sql = (
            f"SELECT call_us, micro_cents, coalesce(input_tokens, 0) + "
            f"coalesce(output_tokens, 0), {flags}, {given}, unpriced, speed_unpriced "
            f"FROM {names.COSTS_TABLE} WHERE state = 'current'{where} ORDER BY call_us"
        )
        found = store.select(sql, [*params, *times])
        spends = [Spend(at_us=int(t), micro_cents=int(m), tokens=int(n), unverified=int(u),
                        given=int(g), unpriced=int(x), speed_unpriced=int(f))
                  for t, m, n, u, g, x, f in found]  # fmt: skip
        result = block_report(spends, window.now_us)
    else:
        key = _COLUMN[by]
        sql = (
            f"SELECT {key}, sum(micro_cents), count(*), sum({flags}), sum({given}), "
            f"sum(unpriced), sum(speed_unpriced) "
            f"FROM {names.COSTS_TABLE} WHERE state = 'current'{where} GROUP BY {key}"
        )
        found = store.select(sql, [*params, *times])
        # PostgreSQL sums bigint as numeric, hence the int()s.
        rows = [ReportRow(k, micro_cents=int(m), events=n, unverified=int(u), given=int(g),
                          unpriced=int(x), speed_unpriced=int(f))
                for k, m, n, u, g, x, f in found]  # fmt: skip
        if by == "model":
            rows = canonical_models(rows, catalog)
        rows.sort(key=attrgetter("key"))  # biggest first, then by key: two stable sorts,
        rows.sort(key=attrgetter("micro_cents"), reverse=True)  # with C key functions
        result = Report(by, rows)
    if result.total_row.speed_unpriced:
        result.speed_models = speed_unpriced_models(store, catalog, where, times)
    return result


def speed_unpriced_models(
    store: EventStore, catalog: Catalog, where: str = "", params: Sequence[object] = ()
) -> dict[str, int]:
    """How many current costs ``where`` selects were priced at standard rates for want
    of rates at their speed (``speed_unpriced``), per catalog model, most first."""
    sql = (
        f"SELECT model, count(*) FROM {names.COSTS_TABLE} "
        f"WHERE state = 'current' AND speed_unpriced = 1{where} GROUP BY model"
    )
    return canonical_counts(store.select(sql, list(params)), catalog)


def canonical_counts(counts: Iterable[Sequence[Any]], catalog: Catalog | None) -> dict[str, int]:
    """(model, count) pairs merged per catalog model (an alias counts under its model's
    id; no catalog: as named), most first."""
    found: dict[str, int] = {}
    for model, n in counts:
        known = None if catalog is None else catalog.find(str(model))
        name = str(model) if known is None else known.id
        found[name] = found.get(name, 0) + int(n)
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def canonical_models(rows: list[ReportRow], catalog: Catalog) -> list[ReportRow]:
    """Rows per model name merged per catalog model: an alias counts under its model's id
    (a name the catalog does not know stays as it is)."""
    merged: dict[str, ReportRow] = {}
    for r in rows:
        found = catalog.find(r.key)
        key = r.key if found is None else found.id
        merged.setdefault(key, ReportRow(key)).add(r)
    return list(merged.values())


def block_report(spends: list[Spend], now_us: int | None = None) -> Report:
    """One row per 5-hour block (``domain/claude_code/blocks.py``), oldest first, keyed
    by its start; the blocks themselves (times, activity, burn rate) ride along."""
    import time

    found = blocks(spends, time.time_ns() // 1_000 if now_us is None else now_us)
    rows = []
    for b in found:
        rows.append(row := ReportRow(utc_minute(b.start_us)))
        row.add(b.total)
    return Report("block", rows, found)


def utc_minute(us: int) -> str:
    """``2026-03-01T10:00Z``: a block's start, as its row names it."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def tree(store: EventStore, root: str, catalog: Catalog, *, full: bool = False) -> list[TreeNode]:
    """``root`` and every agent below it, depth first, each with its current cost.

    One query: a recursive walk down parent ids, and per agent two sums over its own
    cost rows. Those subqueries filter on ``agent_id`` alone, so the planner must use
    its index: with ``state`` in the WHERE too, SQLite (no statistics) may take another
    index and scan every current cost once per agent.
    """
    columns = names.AGENT_COLUMNS if full else TREE_COLUMNS
    unvouched, params = unvouched_sql(catalog, "c.")
    costs = f"FROM {names.COSTS_TABLE} c WHERE c.agent_id = a.id"
    sql = (
        f"WITH RECURSIVE sub(id) AS (SELECT id FROM {names.AGENTS_TABLE} WHERE id = ? "
        f"UNION SELECT a.id FROM {names.AGENTS_TABLE} a JOIN sub ON a.parent_agent_id = sub.id) "
        f"SELECT {', '.join('a.' + c for c in columns)}, "
        f"(SELECT sum(CASE WHEN c.state = 'current' THEN c.micro_cents ELSE 0 END) {costs}), "
        f"(SELECT sum(CASE WHEN c.state = 'current' AND {unvouched} THEN 1 ELSE 0 END) {costs}) "
        f"FROM {names.AGENTS_TABLE} a WHERE a.id IN (SELECT id FROM sub) "
        "ORDER BY a.forked_us, a.id"
    )
    width = len(columns)
    rows = [(dict(zip(columns, r[:width], strict=True)), r[width:])
            for r in store.select(sql, [root, *params])]  # fmt: skip
    spent = {row["id"]: sums for row, sums in rows}
    return [
        TreeNode(depth, row, _cost(row["id"], *spent[row["id"]]))
        for depth, row in walk([row for row, _ in rows], root)
    ]


def _cost(agent_id: str, micro: Any, unverified: Any) -> ReportRow:
    return ReportRow(agent_id, micro_cents=int(micro or 0), unverified=int(unverified or 0))


def vouched_entries(catalog: Catalog) -> list[tuple[str, str]]:
    """Every price entry the catalog vouches for: still there, with the same hash, and
    ``verified``. Any other entry a cost names is counted as unverified."""
    return [(m.id, m.price_digest) for m in catalog.models if m.pricing.vouched]


def unvouched_sql(catalog: Catalog, prefix: str = "") -> tuple[str, list[str]]:
    """SQL true for a cost row priced by an entry not among ``vouched_entries``, and
    its parameters."""
    entries = vouched_entries(catalog)
    entry_id, entry_hash = f"{prefix}price_entry_id", f"{prefix}price_entry_hash"
    if not entries:
        return f"{entry_id} IS NOT NULL", []
    values = ", ".join(["(?, ?)"] * len(entries))
    sql = (
        f"({entry_id} IS NOT NULL AND ({entry_hash} IS NULL "
        f"OR ({entry_id}, {entry_hash}) NOT IN (VALUES {values})))"
    )
    return sql, [v for pair in entries for v in pair]


def report_dict(
    result: Report, start_us: int | None, limit: int | None = None, *, until_us: int | None = None
) -> dict[str, Any]:
    """One object: the shown rows, then totals over every row (``row_count`` of them);
    a block row also has its times, whether it is active, and an active block's burn."""
    rows = [
        {
            result.by: r.key,
            "events": r.events,
            "micro_cents": r.micro_cents,
            "unverified_events": r.unverified,
            "given_events": r.given,
            "unpriced_events": r.unpriced,
            "speed_unpriced_events": r.speed_unpriced,
        }
        for r in (result.rows if limit is None else result.rows[:limit])
    ]
    for row, block in zip(rows, result.blocks, strict=False):
        row.update(started_us=block.start_us, ended_us=block.end_us, active=block.active,
                   first_seen_us=block.total.at_us, last_seen_us=block.last_us,
                   tokens=block.total.tokens,
                   burn=None if block.burn is None else asdict(block.burn))  # fmt: skip
    return {
        "by": result.by,
        "since_us": start_us,
        "until_us": until_us,
        "rows": rows,
        "total_micro_cents": result.total,
        "unverified": result.total_row.unverified,
        "unpriced": result.total_row.unpriced,
        "speed_unpriced": {
            "events": result.total_row.speed_unpriced,
            "models": result.speed_models,
        },
        "row_count": len(result.rows),
        "limit": limit,
    }
