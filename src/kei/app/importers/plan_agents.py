"""Plan the events that carry upstream ``agents`` rows into kei, one group per agent.

Every event is decided by the domain rules (``kei.domain.agents.rules.decide_*``) against
one ``LedgerState`` that already holds what kei has (``KeiView``) and is folded
forward with each planned event, so the plan is exactly what the rules accept in
order. Upstream facts the rules refuse are left out and reported, never forced in.

- **New agent**: ``agent.forked`` at version 0 of ``agent/<id>`` (every column
  carried), ``agent.dna.claimed`` at version 0 of ``dna/<dna>`` when it keeps a DNA,
  then its status, outcome and cost. A branch or parent branch over 256 characters
  (possible before upstream's v3 triggers) keeps the whole agent out, its cost too.
- **Parent** and the dropped fields: see ``plan_fork.py``.
- **Status**: done → ``agent.completed(summary)``; failed → ``agent.failed(summary)``;
  merged → completed then merged (upstream does not say whether it had failed);
  rejected (upstream never writes it) → ``agent.failed``, reported. All at
  ``finished_ts`` (else ``started_ts``).
- **Outcome** (v9): ``agent.outcome`` for a finished agent; a running one's is reported.
- **Cost** (v6+): one ``cost.recorded`` of upstream's total (``cost_micro_cents``, else
  ``cost_cents`` × 1,000,000), no price entry, empty provider/model as ``unknown``.
- **Re-run**: an agent an earlier import forked gets only what upstream added since:
  later status moves, a changed outcome, a changed cost (``cost.amended`` of the
  current head of the imported cost's chain). A row whose id kei holds for another
  row was given ``<namespace>:<id>`` before planning (``namespaces.py``).
- **Unreadable times**: an agent without a readable ``started_ts`` is left out and a
  new one named; an unreadable ``finished_ts`` is named and its status events are
  dated at ``started_ts`` (``upstream_values.py``).
"""

from __future__ import annotations

from typing import Final

from msgspec import Struct, field
from msgspec.structs import replace

from kei.app.agent_writes import agent_stream, dna_stream
from kei.app.importers.kei_view import Existing, KeiView
from kei.app.importers.plan_costs import UNKNOWN, CostPlanner, count, has_cost
from kei.app.importers.plan_fork import fork_of, origin
from kei.app.importers.report import ImportReport, shown
from kei.app.importers.upstream import US, UpstreamAgent
from kei.app.ledger.ledger import NewEvent
from kei.domain.agents.rules import (
    TRANSITIONS,
    Accepted,
    Decision,
    apply_payload,
    decide_done,
    decide_fail,
    decide_fork,
    decide_merged,
    decide_outcome,
)
from kei.domain.events import DnaClaimed, OutcomeRecorded, Payload, event_type_of
from kei.domain.events.limits import payload_problem
from kei.errors import KeiError
from kei.limits import LIMITS

UPSTREAM_STATUSES: Final = frozenset({"running", "done", "failed", "merged", "rejected"})


class _Group(Struct):
    """One agent's planned events; ``version`` is its stream's version so far."""

    stream: str
    version: int
    events: list[NewEvent] = field(default_factory=list)


class AgentPlanner:
    """Plans every upstream agent in order; see the module docstring."""

    def __init__(self, view: KeiView, report: ImportReport) -> None:
        self.view = view
        self.state = view.state
        self.report = report
        self.costs = CostPlanner(view.state, report)
        self.merged_as_done = 0

    def plan(self, agents: list[UpstreamAgent]) -> list[list[NewEvent]]:
        groups = [self._one(agent) for agent in agents]
        self._notes()
        return [g for g in groups if g]

    def _one(self, agent: UpstreamAgent) -> list[NewEvent]:
        existing = self.view.existing.get(agent.id)
        if not agent.id:
            return self._skip(agent, "its id is empty")
        if agent.id in self.view.clashes:
            why = "kei already holds that id, with and without this namespace, for other rows"
            return self._skip(agent, f"{why}; import this database with another --namespace")
        for bad in agent.unreadable:
            if bad.column == "started_ts" and existing is None:
                return self._skip(agent, f"{bad.what} is {bad.why}")
            self.report.skip(agent.ref, bad.what, f"{bad.why}; {DATED}")
        if existing is None:
            return self._new(agent)
        if not existing.imported:
            return self._skip(agent, "already in kei, not imported")
        if agent.id not in self.state.agents:
            return self._skip(agent, "already in kei, but kei's rules skipped its fork")
        group = _Group(existing.stream, existing.version)
        self._status(agent, group)
        self._outcome(agent, group, existing)
        self._cost(agent, group, existing)
        if group.events:
            self.report.agents_updated += 1
        else:
            self.report.agents_unchanged += 1
        return group.events

    def _skip(self, agent: UpstreamAgent, why: str) -> list[NewEvent]:
        self.report.agents_skipped += 1
        self.report.skip(agent.ref, "agent", why)
        if has_cost(agent):
            self.report.skip(f"{agent.ref}#cost", "cost", "its agent was not carried over")
        return []

    # -- fork ----------------------------------------------------------------------

    def _new(self, agent: UpstreamAgent) -> list[NewEvent]:
        for name, value in (("branch", agent.branch), ("parent_branch", agent.parent_branch)):
            if value is not None and len(value) > LIMITS.max_branch_chars:
                return self._skip(
                    agent, f"{name} length {len(value)} exceeds cap {LIMITS.max_branch_chars}"
                )
        fork = fork_of(self.view, self.report, agent)
        problem = payload_problem(fork)  # a value kei's limits refuse: the row is not carried
        if problem is not None:
            return self._skip(agent, problem)
        try:
            decide_fork(self.state, fork)
        except KeiError as exc:
            return self._skip(agent, str(exc))
        group = _Group(agent_stream(agent.id), 0)
        self._add(group, fork)
        if fork.dna is not None:
            claim = DnaClaimed(dna=fork.dna, agent_id=agent.id)
            group.events.append(NewEvent(dna_stream(fork.dna), claim, 0))
            self.report.events_appended += 1
        self.view.by_branch.setdefault(agent.branch, []).append((agent.started_ts * US, agent.id))
        self.report.agents_imported += 1
        self._status(agent, group)
        self._outcome(agent, group, None)
        self._cost(agent, group, None)
        return group.events

    # -- status and outcome -----------------------------------------------------------

    def _status(self, agent: UpstreamAgent, group: _Group) -> None:
        up = agent.status
        if up not in UPSTREAM_STATUSES:
            self.report.skip(
                agent.ref, f"status {shown(up)}", "not an upstream status; left running"
            )
            return
        wanted = "failed" if up == "rejected" else up
        current = self.state.agents[agent.id].status
        if up == "running" or current == wanted or _reachable(wanted, current):
            return  # kei is already there, or beyond
        steps = ["done", "merged"] if wanted == "merged" and current == "running" else [wanted]
        for step in steps:
            try:
                decision = self._decide(step, agent)
            except KeiError as exc:
                self.report.skip(agent.ref, f"status {shown(up)}", str(exc))
                return
            if isinstance(decision, Accepted):
                for payload in decision.payloads:
                    self._add(group, replace(payload, origin=origin(agent, agent.ended_ts)))
        if len(steps) == 2:
            self.merged_as_done += 1
        if up == "rejected":
            why = "kei has no rejected status (upstream never writes it); imported as failed"
            self.report.skip(agent.ref, "status 'rejected'", why)

    def _decide(self, step: str, agent: UpstreamAgent) -> Decision:
        if step == "done":
            return decide_done(self.state, agent.id, summary=_given(agent.summary, NO_SUMMARY))
        if step == "merged":
            return decide_merged(self.state, agent.id)
        default = "rejected upstream" if agent.status == "rejected" else NO_REASON
        return decide_fail(self.state, agent.id, reason=_given(agent.summary, default))

    def _outcome(self, agent: UpstreamAgent, group: _Group, existing: Existing | None) -> None:
        if agent.outcome is None:
            return
        depth, stubs = count(agent.escalation_depth), count(agent.stubs_count)
        if existing is not None:
            done = existing.imported_of(frozenset({"agent.outcome"}), agent.ref)
            last = done[-1].payload() if done else None
            if isinstance(last, OutcomeRecorded) and (
                last.outcome,
                last.escalation_depth,
                last.stub_count,
            ) == (agent.outcome, depth, stubs):
                return
        what = f"outcome {shown(agent.outcome)}"
        if self.state.agents[agent.id].status == "running":
            why = "the agent is still running; kei records an outcome only for a finished agent"
            self.report.skip(agent.ref, what, why)
            return
        try:
            decision = decide_outcome(
                self.state,
                agent.id,
                outcome=agent.outcome,
                escalation_depth=depth,
                stub_count=stubs,
            )
        except KeiError as exc:
            self.report.skip(agent.ref, what, str(exc))
            return
        for name, value in (
            ("escalation_depth", agent.escalation_depth),
            ("stubs_count", agent.stubs_count),
        ):
            if value is not None and value < 0:
                self.report.skip(agent.ref, f"{name} {value}", "negative; carried as unknown")
        self._add(group, replace(decision.payloads[0], origin=origin(agent, agent.ended_ts)))

    def _cost(self, agent: UpstreamAgent, group: _Group, existing: Existing | None) -> None:
        payload = self.costs.plan(agent, existing)
        if payload is not None:
            self._add(group, payload)

    # -- plumbing ----------------------------------------------------------------------

    def _add(self, group: _Group, payload: Payload) -> None:
        problem = payload_problem(payload)
        if problem is not None:  # a value kei's limits refuse (limits.py): not carried
            self.report.skip(shown(group.stream), event_type_of(payload).name, problem)
            return
        group.events.append(NewEvent(group.stream, payload, group.version))
        group.version += 1
        apply_payload(self.state, payload, stream=group.stream, version=group.version)
        self.report.events_appended += 1

    def _notes(self) -> None:
        if self.merged_as_done:
            self.report.notes.append(
                f"{self.merged_as_done} merged agent(s) imported as done, then merged: "
                "upstream does not say whether a merged agent had failed"
            )
        if self.costs.unknown_names:
            self.report.notes.append(
                f"{self.costs.unknown_names} cost event(s) had no provider or model upstream; "
                f"recorded as {UNKNOWN!r}"
            )


def _reachable(start: str, target: str) -> bool:
    """Can ``target`` follow ``start`` in the transition table (in any number of moves)?"""
    nxt = TRANSITIONS.get(start, frozenset())
    return target in nxt or any(_reachable(n, target) for n in nxt)


DATED: Final = "carried as unknown: its status events are dated at started_ts"
NO_SUMMARY: Final = "(no summary upstream)"
NO_REASON: Final = "(no reason upstream)"


def _given(text: str | None, fallback: str) -> str:
    """Upstream's text, or ``fallback`` where it left none (kei needs a summary or a
    reason that is not blank)."""
    return text if text is not None and text.strip() else fallback
