"""The cost commands: record and amend with the domain rules, report from the ``costs`` read model.

Writes work as the agent commands do (``kei.app.agents``): read the version of
``agent/<id>``, catch the ``agents`` and ``costs`` projections up, load the agent (and for
an amendment the target's state) into a ``LedgerState``, ask
``kei.domain.agents.rules.decide_cost`` / ``decide_amend``, and append at the version read. A
command that loses the race to another writer reads and decides again
(``app/ledger/retrying.py``): eight hooks recording costs for one agent at once all land.
Cost events share the agent's stream.

Pricing (:func:`price_request`): an explicit amount is stored as given, with no price
entry. Tokens without an amount are priced from the catalog (``Catalog.price``), and the
event names the entry that produced the amount (model id and ``Model.price_digest``).
Catalog pricing needs both input and output tokens (an unknown count is never priced as
zero) and a model whose catalog provider is the one given.

Reads (``report``, and ``tree`` for ``kei agent tree``) catch the read models up and
ask ``kei.app.cost_reads``, which holds the money rules of every report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from kei.app import cost_reads
from kei.app.agent_writes import agent_stream
from kei.app.cost_reads import ALL_TIME, Report, TreeNode, Window
from kei.app.cost_writes import record_cost
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.agents.rules import Accepted, LedgerState, decide_amend
from kei.domain.catalog.catalog import Catalog
from kei.domain.events import CostAmended, CostRecorded
from kei.errors import InputError
from kei.projections.agents import Agents, state_of
from kei.projections.costs import Costs, event_name


def parse_event_name(text: str) -> tuple[str, int]:
    """``STREAM:VERSION`` (as ``kei cost record`` prints it) -> ``(stream, version)``."""
    stream, sep, version = text.rpartition(":")
    if not sep or not stream or not version.isdigit():
        raise InputError(f"event {text!r} is not STREAM:VERSION (e.g. agent/a1:2)")
    return stream, int(version)


class CostService(ReadModelService):
    """The cost commands over one ledger and its ``agents`` and ``costs`` read models."""

    def __init__(self, ledger: Ledger, *, seal_key: bytes | None = None) -> None:
        self.agents, self.costs = Agents(), Costs()
        super().__init__(
            ReadModels(ledger, self.agents, self.costs, name="costs", seal_key=seal_key)
        )

    def _state(self, agent_id: str) -> LedgerState:
        t = self.agents.table
        return state_of(self.models.rows(sa.select(t).where(t.c.id == agent_id)))

    # -- commands ----------------------------------------------------------------

    def record(self, request: CostRecorded) -> str:
        """Append ``request``; returns its ``STREAM:VERSION`` (``cost_writes``: decided
        from the agent's stream, as a hook records it)."""
        event = record_cost(self.ledger, request)
        return event_name(event.stream, event.version)

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
        found = self.models.rows(sa.select(t).where(where))
        return found[0] if found else None

    def _append(self, agent_id: str, decide: Callable[[LedgerState], Accepted]) -> str:
        return retry_write(
            self.ledger.retry, lambda: self._append_once(agent_id, decide), what=f"agent {agent_id}"
        )

    def _append_once(self, agent_id: str, decide: Callable[[LedgerState], Accepted]) -> str:
        stream = agent_stream(agent_id)
        version = self.ledger.store.stream_version(stream)
        self.models.catch_up()
        decision = decide(self._state(agent_id))
        batch = [NewEvent(stream, p, version + i) for i, p in enumerate(decision.payloads)]
        event = self.ledger.append(batch)[-1]  # ConcurrencyError: another writer came first
        return event_name(event.stream, event.version)

    # -- reads -------------------------------------------------------------------

    def report(self, by: str, catalog: Catalog, window: Window = ALL_TIME) -> Report:
        """Current cost events in ``window`` summed exactly per ``by`` key (``cost_reads``)."""
        self.models.catch_up()
        return cost_reads.report(self.ledger.store, by, catalog, window)

    def tree(self, root: str, catalog: Catalog, *, full: bool = False) -> list[TreeNode]:
        """``kei agent tree``: ``root`` and every agent below it, each with its cost."""
        self.models.catch_up()
        return cost_reads.tree(self.ledger.store, root, catalog, full=full)

    def agent_total(self, agent_id: str) -> int:
        """The agent's current cost in micro-cents, exact (on the ``agent_id`` index, as
        in ``tree``)."""
        self.models.catch_up()
        t = self.costs.table
        spent = sa.func.sum(sa.case((t.c.state == "current", t.c.micro_cents), else_=0))
        found = self.models.rows(sa.select(spent.label("s")).where(t.c.agent_id == agent_id))
        value = found[0]["s"] if found else None
        return 0 if value is None else int(value)
