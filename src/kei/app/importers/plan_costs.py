"""Plan the cost event of one upstream agent (kei-ledger v6+ cost columns).

Upstream keeps one running total per agent, so an import carries one fact: the
total, as one ``cost.recorded`` (origin ref ``agents/<id>#cost``) with upstream's
amount and no price entry (the amount is upstream's, not priced from kei's
catalog). The amount is ``cost_micro_cents`` (v7+) when it is non-zero, else
``cost_cents`` × 1,000,000. Upstream's ``record-cost-micro`` adds to the two columns
independently, so they can disagree (0 ¢ beside 2,000,000 µ¢): kei carries the exact
total and names the row. A row with no amount, no provider, no model and no
token counts has no cost. Empty provider or model become ``unknown``; token counts
come from v9 ``tokens_in``/``tokens_out`` (NULL stays unknown, never 0; a
negative count is carried as unknown and reported).

A re-run compares upstream with the last cost event an import carried over; when
upstream changed, a ``cost.amended`` replaces the current head of that event's
chain (the event itself, or whatever amendment replaced it since). The domain
rules (``decide_cost``, ``decide_amend``) accept or refuse each event.
"""

from __future__ import annotations

from typing import Final, TypedDict

from kei.app.importers.kei_view import SOURCE, Existing
from kei.app.importers.report import ImportReport
from kei.app.importers.upstream import US, UpstreamAgent
from kei.domain.agents.rules import COST_TYPES, LedgerState, decide_amend, decide_cost
from kei.domain.events import CostAmended, CostRecorded, Origin, TokenUsage
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError, KeiError

MAX_MICRO: Final = 2**63 - 1  # the largest amount a BIGINT read model holds
UNKNOWN: Final = "unknown"
REASON: Final = "the total changed upstream"


class _Fields(TypedDict):
    """What a ``cost.recorded`` and the ``cost.amended`` replacing it both say."""

    agent_id: str
    provider: str
    model: str
    micro_cents: int
    usage: TokenUsage
    origin: Origin


class CostPlanner:
    """Decides each agent's cost event; counts those recorded with ``unknown`` names."""

    def __init__(self, state: LedgerState, report: ImportReport) -> None:
        self.state = state
        self.report = report
        self.unknown_names = 0

    def plan(
        self, agent: UpstreamAgent, existing: Existing | None
    ) -> CostRecorded | CostAmended | None:
        """The event to append for ``agent``'s cost, or None (nothing new, or refused)."""
        ref = f"{agent.ref}#cost"
        done = existing.imported_of(COST_TYPES, ref) if existing is not None else []
        if not done and not has_cost(agent):
            return None
        micro = micro_cents(agent)
        whole = agent.cost_cents
        if agent.cost_micro_cents and whole is not None and whole * US != agent.cost_micro_cents:
            self.report.skip(
                ref,
                f"cost_cents {whole}",
                f"upstream's whole-cent total disagrees with its exact total "
                f"cost_micro_cents {agent.cost_micro_cents} (upstream's record-cost-micro "
                "adds both as given); kei carries the exact total",
            )
        what = f"cost {micro} µ¢"
        if micro > MAX_MICRO:
            self.report.skip(ref, what, "exceeds the largest amount kei stores")
            return None
        fields = _Fields(
            agent_id=agent.id,
            provider=agent.provider or UNKNOWN,
            model=agent.model or UNKNOWN,
            micro_cents=micro,
            usage=TokenUsage(
                input_tokens=count(agent.tokens_in), output_tokens=count(agent.tokens_out)
            ),
            origin=Origin(source=SOURCE, occurred_at_us=agent.ended_ts * US, ref=ref),
        )
        try:
            payload = self._amend(fields, done, existing) if done else self._record(fields)
        except KeiError as exc:
            self.report.skip(ref, what, str(exc))
            return None
        if payload is None:
            return None
        for name, value in (("tokens_in", agent.tokens_in), ("tokens_out", agent.tokens_out)):
            if value is not None and value < 0:
                self.report.skip(ref, f"{name} {value}", "negative; carried as unknown")
        self.unknown_names += not (agent.provider and agent.model)
        self.report.cost_events += 1
        return payload

    def _record(self, f: _Fields) -> CostRecorded:
        payload = CostRecorded(**f)
        decide_cost(self.state, payload)
        return payload

    def _amend(
        self, f: _Fields, done: list[RecordedEvent], existing: Existing | None
    ) -> CostAmended | None:
        """Replace the imported cost when upstream changed since the last import, else None."""
        last = done[-1].payload()
        if isinstance(last, CostRecorded | CostAmended) and (
            (last.provider, last.model, last.micro_cents, last.usage)
            == (f["provider"], f["model"], f["micro_cents"], f["usage"])
        ):
            return None
        head = self._head(done[-1], existing)
        payload = CostAmended(
            **f, supersedes_stream=head.stream, supersedes_version=head.version, reason=REASON
        )
        decide_amend(self.state, payload, head)
        return payload

    def _head(self, last: RecordedEvent, existing: Existing | None) -> RecordedEvent:
        """The current event of ``last``'s chain: ``last``, or the amendment that replaced it."""
        key = (last.stream, last.version)
        while key in self.state.superseded:
            key = self.state.superseded[key]
        for event in existing.events if existing is not None else []:
            if (event.stream, event.version) == key:
                return event
        raise InputError(f"its current cost event {key[0]}@{key[1]} is not on the agent's stream")


def count(value: int | None) -> int | None:
    """A count as kei keeps it: a negative one is unknown."""
    return None if value is None or value < 0 else value


def micro_cents(agent: UpstreamAgent) -> int:
    """Upstream's exact total when it has one, else its whole cents."""
    if agent.cost_micro_cents:
        return agent.cost_micro_cents
    return (agent.cost_cents or 0) * US


def has_cost(agent: UpstreamAgent) -> bool:
    """Does the row say anything about cost (amount, names or tokens)?"""
    tokens = (agent.tokens_in, agent.tokens_out)
    named = agent.provider or agent.model
    return bool(micro_cents(agent) or named or any(t is not None for t in tokens))
