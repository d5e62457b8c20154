"""The ``agent.forked`` event of a new upstream agent: lineage and identity, cleaned.

Every column is carried (``worktree_path`` → ``worktree``, ``creator_id`` →
``creator``, ``fork_parent_id`` → ``fork_parent``), except what kei's rules would
refuse, which is dropped for this agent and reported:

- ``dna``: NULL is no DNA; ``''`` or a text the strict parser (``kei.domain.agents.dna``)
  refuses is dropped with the parser's reason; a DNA another agent holds (an
  earlier row of a pre-v5 database, or an agent already in kei) is dropped.
- ``fork_parent_id``: dropped when it does not parse as a DNA.
- ``parent_agent_id`` is resolved from ``parent_branch``: the most recently started
  agent on that branch among those imported earlier in this run and those already
  in kei that started no later than this one (ties go to the later row). A parent
  always starts before its child, so branch-name cycles cannot make agent cycles.
  The branch text itself is always kept in ``parent_branch``.
"""

from __future__ import annotations

from kei.app.importers.kei_view import SOURCE, KeiView
from kei.app.importers.report import ImportReport, shown
from kei.app.importers.upstream import US, UpstreamAgent
from kei.domain.agents.dna import parse_dna
from kei.domain.events import AgentForked, Origin
from kei.errors import KeiError


def fork_of(view: KeiView, report: ImportReport, agent: UpstreamAgent) -> AgentForked:
    """The fork request for ``agent`` (to be decided by ``decide_fork``)."""
    return AgentForked(
        agent_id=agent.id,
        branch=agent.branch,
        parent_agent_id=parent_of(view, agent),
        parent_branch=agent.parent_branch,
        spec_sha=agent.spec_sha,
        worktree=agent.worktree_path,
        dna=kept_dna(view, report, agent),
        creator=agent.creator_id,
        fork_parent=kept_fork_parent(report, agent),
        origin=origin(agent, agent.started_ts),
    )


def origin(agent: UpstreamAgent, seconds: int, suffix: str = "") -> Origin:
    """Where an agent fact came from: this row, at ``seconds`` upstream time."""
    return Origin(source=SOURCE, occurred_at_us=seconds * US, ref=agent.ref + suffix)


def parent_of(view: KeiView, agent: UpstreamAgent) -> str | None:
    """The most recently started agent on the parent branch that started no later."""
    if agent.parent_branch is None:
        return None
    limit = agent.started_ts * US
    found = [c for c in view.by_branch.get(agent.parent_branch, []) if c[0] <= limit]
    best = max(enumerate(found), key=lambda ic: (ic[1][0], ic[0]), default=None)
    return None if best is None else best[1][1]


def kept_dna(view: KeiView, report: ImportReport, agent: UpstreamAgent) -> str | None:
    if agent.dna is None:
        return None
    what = f"dna {shown(agent.dna)}"
    try:
        parse_dna(agent.dna)
    except KeiError as exc:
        report.skip(agent.ref, what, f"{exc}; dropped")
        return None
    owner = view.state.by_dna.get(agent.dna) or view.claimed.get(agent.dna)
    if owner is not None:
        report.skip(agent.ref, what, f"already claimed by agent {owner}; dropped")
        return None
    return agent.dna


def kept_fork_parent(report: ImportReport, agent: UpstreamAgent) -> str | None:
    if agent.fork_parent_id is None:
        return None
    try:
        parse_dna(agent.fork_parent_id)
    except KeiError as exc:
        what = f"fork_parent_id {shown(agent.fork_parent_id)}"
        report.skip(agent.ref, what, f"{exc}; dropped")
        return None
    return agent.fork_parent_id
