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
catalog price is counted as unverified in the report rows that include it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from kei.adapters.agent_service import agent_stream
from kei.adapters.ledger import Ledger, NewEvent
from kei.adapters.projection_db import driver_errors, make_engine
from kei.adapters.projection_engine import ProjectionEngine
from kei.domain.agents import Accepted, LedgerState, decide_amend, decide_cost
from kei.domain.catalog import Catalog
from kei.domain.events import CostAmended, CostRecorded, TokenUsage
from kei.errors import ConcurrencyError, InputError
from kei.projections.agents import Agents, state_of
from kei.projections.costs import Costs, event_name

GROUPS: Final = ("agent", "provider", "model", "day")
_COLUMN: Final = {"agent": "agent_id", "provider": "provider", "model": "model", "day": "day"}


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
            return [r._asdict() for r in conn.execute(query)]

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
        key = t.c[_COLUMN[by]]
        cols = (key, t.c.price_entry_id, t.c.price_entry_hash)
        query = sa.select(*cols, sa.func.sum(t.c.micro_cents), sa.func.count()).where(
            t.c.state == "current"
        )
        if since_us is not None:
            query = query.where(t.c.call_us >= since_us)
        rows: dict[str, ReportRow] = {}
        for r in self._select(query.group_by(*cols)):
            values = list(r.values())
            name, entry_id, entry_hash, micro, n = values
            row = rows.setdefault(name, ReportRow(name))
            row.micro_cents += int(micro)  # PostgreSQL sums bigint as numeric
            row.events += int(n)
            if entry_id is None:
                row.given += int(n)
            elif not vouched(catalog, entry_id, entry_hash):
                row.unverified += int(n)
        ordered = sorted(rows.values(), key=lambda r: (-r.micro_cents, r.key))
        return Report(by, ordered)

    def agent_total(self, agent_id: str) -> int:
        """The agent's current cost in micro-cents, exact."""
        self.engine.catch_up()
        t = self.costs.table
        where = sa.and_(t.c.agent_id == agent_id, t.c.state == "current")
        found = self._select(sa.select(sa.func.sum(t.c.micro_cents).label("s")).where(where))
        value = found[0]["s"] if found else None
        return 0 if value is None else int(value)


def vouched(catalog: Catalog, entry_id: str, entry_hash: str | None) -> bool:
    """Does the current catalog still hold this price entry, unchanged and verified?"""
    model = catalog.find(entry_id)
    return (
        model is not None
        and model.id == entry_id
        and model.price_digest == entry_hash
        and model.pricing.vouched
    )
