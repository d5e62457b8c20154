"""The cost commands: record and amend with the domain rules, report from the ``costs`` read model.

Writes work as the agent commands do (``kei.adapters.agent_service``): read the version of
``agent/<id>``, catch the ``agents`` and ``costs`` projections up, load the agent (and for
an amendment the target's state) into a ``LedgerState``, ask
``kei.domain.agents.decide_cost`` / ``decide_amend``, and append at the version read, so a
racing writer makes the command fail cleanly. Cost events share the agent's stream.

Pricing (:func:`price_request`): an explicit amount is stored as given, with no price
entry. Tokens without an amount are priced from the catalog (``Catalog.price``), and the
event names the entry that produced the amount (model id and ``Model.price_digest``).
Catalog pricing needs both input and output tokens (an unknown count is never priced as
zero) and a model whose catalog provider is the one given.

Reports sum ``current`` rows only (an amended cost counts once, at its latest amount),
exactly, in integer micro-cents. A catalog price is *vouched* only while the current
catalog still holds that entry with the same hash and ``verified`` status; every other
catalog price is counted as unverified in the report rows that include it. ``tree``
answers ``kei agent tree`` with each agent's current cost by the same rule, in one grouped
query for the whole subtree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from kei.adapters.agent_service import agent_stream, tree_rows
from kei.adapters.ledger import Ledger, NewEvent
from kei.adapters.projection_db import driver_errors, make_engine
from kei.adapters.projection_engine import ProjectionEngine
from kei.domain.agents import Accepted, LedgerState, decide_amend, decide_cost
from kei.domain.catalog import Catalog
from kei.domain.events import CostAmended, CostRecorded, TokenUsage
from kei.errors import ConcurrencyError, InputError
from kei.projections.agents import Agents, Row, state_of
from kei.projections.costs import Costs, event_name

GROUPS: Final = ("agent", "provider", "model", "day")
_COLUMN: Final = {"agent": "agent_id", "provider": "provider", "model": "model", "day": "day"}
SPENT: Final = "kei_tree_micro_cents"
UNVERIFIED: Final = "kei_tree_unverified"


@dataclass(frozen=True, slots=True)
class Charge:
    """An amount and the catalog entry that priced it (both None when given by hand)."""

    micro_cents: int
    entry_id: str | None = None
    entry_hash: str | None = None


@dataclass(slots=True)
class ReportRow:
    key: str
    micro_cents: int = 0
    events: int = 0
    unverified: int = 0  # catalog-priced events whose price the catalog cannot vouch for
    given: int = 0  # events whose amount was given by hand (no price entry)


@dataclass(slots=True)
class Report:
    by: str
    rows: list[ReportRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.micro_cents for r in self.rows)

    @property
    def total_row(self) -> ReportRow:
        """Every row summed exactly: the report's TOTAL line."""
        total = ReportRow("TOTAL")
        for r in self.rows:
            total.micro_cents += r.micro_cents
            total.events += r.events
            total.unverified += r.unverified
            total.given += r.given
        return total


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One line of ``kei agent tree``: the agent's row, its depth and its current cost."""

    depth: int
    row: Row
    cost: ReportRow


def parse_event_name(text: str) -> tuple[str, int]:
    """``STREAM:VERSION`` (as ``kei cost record`` prints it) -> ``(stream, version)``."""
    stream, sep, version = text.rpartition(":")
    if not sep or not stream or not version.isdigit():
        raise InputError(f"event {text!r} is not STREAM:VERSION (e.g. agent/a1:2)")
    return stream, int(version)


def price_request(
    catalog: Catalog, provider: str, model: str, usage: TokenUsage, micro: int | None
) -> Charge:
    """The amount to store: ``micro`` as given, else the catalog's price of ``usage``."""
    if micro is not None:
        return Charge(micro)
    tin, tout = usage.input_tokens, usage.output_tokens
    if tin is None or tout is None:
        raise InputError(
            "no amount: give --micro-cents (or --cents), or both --tokens-in and --tokens-out "
            "to price the call from the catalog"
        )
    entry = catalog.get(model)
    if entry.provider != provider:
        raise InputError(
            f"model {model!r} is a {entry.provider} model in the catalog, not {provider}",
            hint="fix --provider, or give the amount with --micro-cents",
        )
    quote = catalog.price(model, tin, tout)
    return Charge(quote.micro_cents, entry.id, entry.price_digest)


class CostService:
    """The cost commands over one ledger and its ``agents`` and ``costs`` read models."""

    def __init__(self, ledger: Ledger, url: str) -> None:
        self.ledger = ledger
        self.agents = Agents()
        self.costs = Costs()
        self.engine = ProjectionEngine(url, ledger.store, [self.agents, self.costs])
        with driver_errors(f"costs in {ledger.store.url}: open failed"):
            self._db = make_engine(url)

    def close(self) -> None:
        self.engine.close()
        self._db.dispose()

    def __enter__(self) -> CostService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, query: Any) -> list[dict[str, Any]]:
        with driver_errors("costs: read failed"), self._db.connect() as conn:
            result = conn.execute(query)
            keys = list(result.keys())  # zip is ~3x faster than Row._asdict on big trees
            return [dict(zip(keys, r, strict=True)) for r in result.all()]

    def _state(self, agent_id: str) -> LedgerState:
        t = self.agents.table
        return state_of(self._select(sa.select(t).where(t.c.id == agent_id)))

    # -- commands ----------------------------------------------------------------

    def record(self, request: CostRecorded) -> str:
        """Append ``request``; returns its ``STREAM:VERSION``."""
        return self._append(request.agent_id, lambda s: decide_cost(s, request))

    def amend(self, request: CostAmended) -> str:
        """Append ``request``, which replaces the cost event it names."""
        key = (request.supersedes_stream, request.supersedes_version)
        target = self.target(*key)

        def decide(state: LedgerState) -> Accepted:
            row = self.cost_row(*key)
            if row is not None and row["superseded_by"] is not None:
                state.superseded[key] = parse_event_name(row["superseded_by"])
            return decide_amend(state, request, target)

        return self._append(request.agent_id, decide)

    def target(self, stream: str, version: int) -> Any:
        """The recorded event at ``stream``:``version`` (refused when there is none)."""
        for event in self.ledger.read_stream(stream):
            if event.version == version:
                return event
        raise InputError(f"no event {event_name(stream, version)} in the log")

    def cost_row(self, stream: str, version: int) -> dict[str, Any] | None:
        t = self.costs.table
        where = sa.and_(t.c.stream == stream, t.c.version == version)
        found = self._select(sa.select(t).where(where))
        return found[0] if found else None

    def _append(self, agent_id: str, decide: Callable[[LedgerState], Accepted]) -> str:
        stream = agent_stream(agent_id)
        version = self.ledger.store.stream_version(stream)
        self.engine.catch_up()
        decision = decide(self._state(agent_id))
        batch = [NewEvent(stream, p, version + i) for i, p in enumerate(decision.payloads)]
        try:
            event = self.ledger.append(batch)[-1]
        except ConcurrencyError:
            raise ConcurrencyError(
                f"agent {agent_id} changed while this command ran; nothing appended",
                hint="run the command again",
            ) from None
        return event_name(event.stream, event.version)

    # -- reads -------------------------------------------------------------------

    def report(self, by: str, catalog: Catalog, since_us: int | None = None) -> Report:
        """Current cost events summed exactly per ``by`` key, biggest first."""
        if by not in GROUPS:
            raise InputError(f"unknown grouping {by!r}; use one of {', '.join(GROUPS)}")
        self.engine.catch_up()
        t = self.costs.table
        where = [] if since_us is None else [t.c.call_us >= since_us]
        rows = self._sum_by(t.c[_COLUMN[by]], catalog, *where)
        return Report(by, sorted(rows.values(), key=lambda r: (-r.micro_cents, r.key)))

    def tree(self, root: str, catalog: Catalog, *, full: bool = False) -> list[TreeNode]:
        """``kei agent tree``: ``root`` and every agent below it (``tree_rows``), each with
        its current cost by the report's rules. One query, whatever the size of the tree:
        each agent's sums are correlated subqueries over its own cost rows. Their only
        WHERE term is ``agent_id``, so the planner must use that index: with ``state``
        there too, SQLite (no statistics) may pick the ``state`` index and scan every
        current cost once per agent."""
        self.engine.catch_up()
        a, t = self.agents.table, self.costs.table
        current = t.c.state == "current"
        spent = sa.func.sum(sa.case((current, t.c.micro_cents), else_=0))
        unverified = sa.func.sum(sa.case((sa.and_(current, unvouched(t, catalog)), 1), else_=0))
        extra = [
            sa.select(spent).where(t.c.agent_id == a.c.id).scalar_subquery().label(SPENT),
            sa.select(unverified).where(t.c.agent_id == a.c.id).scalar_subquery().label(UNVERIFIED),
        ]
        nodes = tree_rows(self._agent_rows, a, root, full=full, extra=extra)
        return [TreeNode(d, r, _cost(r)) for d, r in nodes]

    def _agent_rows(self, where: Any, order: Any = (), columns: Any = None) -> list[Row]:
        a = self.agents.table
        return self._select(sa.select(*(columns or [a])).where(where).order_by(*order))

    def _sum_by(self, key: Any, catalog: Catalog, *where: Any) -> dict[str, ReportRow]:
        """Current cost rows summed per ``key``, counting given and unverified prices:
        one row per key straight from SQL, whatever the number of price entries."""
        t = self.costs.table
        given = sa.func.sum(sa.case((t.c.price_entry_id.is_(None), 1), else_=0))
        unverified = sa.func.sum(sa.case((unvouched(t, catalog), 1), else_=0))
        query = sa.select(key, sa.func.sum(t.c.micro_cents), sa.func.count(), given, unverified)
        query = query.where(t.c.state == "current", *where).group_by(key)
        with driver_errors("costs: read failed"), self._db.connect() as conn:
            found = conn.execute(query).all()
        # PostgreSQL sums bigint as numeric, hence the int()s.
        return {
            name: ReportRow(name, int(micro), n, int(unvouched_n), int(given_n))
            for name, micro, n, given_n, unvouched_n in found
        }

    def agent_total(self, agent_id: str) -> int:
        """The agent's current cost in micro-cents, exact (on the ``agent_id`` index, as
        in ``tree``)."""
        self.engine.catch_up()
        t = self.costs.table
        spent = sa.func.sum(sa.case((t.c.state == "current", t.c.micro_cents), else_=0))
        found = self._select(sa.select(spent.label("s")).where(t.c.agent_id == agent_id))
        value = found[0]["s"] if found else None
        return 0 if value is None else int(value)


def _cost(row: Row) -> ReportRow:
    """Pop the tree query's cost columns off ``row``."""
    micro, unverified = row.pop(SPENT), row.pop(UNVERIFIED)
    return ReportRow(row["id"], micro_cents=int(micro or 0), unverified=int(unverified or 0))


def vouched_entries(catalog: Catalog) -> list[tuple[str, str]]:
    """Every price entry the catalog vouches for: still there, with the same hash, and
    ``verified``. Any other entry a cost names is counted as unverified."""
    return [(m.id, m.price_digest) for m in catalog.models if m.pricing.vouched]


def unvouched(t: sa.Table, catalog: Catalog) -> Any:
    """SQL: a cost row priced by an entry that is not among ``vouched_entries``."""
    entry = sa.tuple_(t.c.price_entry_id, t.c.price_entry_hash)
    return sa.and_(
        t.c.price_entry_id.is_not(None),
        sa.or_(t.c.price_entry_hash.is_(None), entry.not_in(vouched_entries(catalog))),
    )
