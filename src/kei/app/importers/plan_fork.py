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
  The branch text itself is always kept in ``parent_branch``. Candidates another
  source database's rows hold are left out (``namespaces.py``).
- Where that parent differs from upstream's ``tree`` (which puts a row under *every*
  row whose branch is its ``parent_branch``, whenever they started), the report names
  the row, upstream's parents and kei's (``tree_difference``).
"""

from __future__ import annotations

from typing import Final

from kei.app.importers.kei_view import SOURCE, KeiView
from kei.app.importers.report import ImportReport, shown
from kei.app.importers.upstream import US, UpstreamAgent
from kei.domain.agents.dna import parse_dna
from kei.domain.events import AgentForked, Origin
from kei.errors import KeiError

SHOWN_IDS: Final = 5


def fork_of(view: KeiView, report: ImportReport, agent: UpstreamAgent) -> AgentForked:
    """The fork request for ``agent`` (to be decided by ``decide_fork``)."""
    parent = parent_of(view, agent)
    tree_difference(view, report, agent, parent)
    return AgentForked(
        agent_id=agent.id,
        branch=agent.branch,
        parent_agent_id=parent,
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


def tree_difference(
    view: KeiView, report: ImportReport, agent: UpstreamAgent, parent: str | None
) -> None:
    """Name ``agent`` when kei's parent is not the one agent upstream's tree puts it under."""
    if agent.parent_branch is None:
        return
    upstream = [i for i in view.tree.get(agent.parent_branch, []) if i and i != agent.id]
    if upstream == ([] if parent is None else [parent]):
        return
    listed = ", ".join(repr(i) for i in upstream[:SHOWN_IDS])
    listed += f" and {len(upstream) - SHOWN_IDS} more" if len(upstream) > SHOWN_IDS else ""
    if parent is None:
        why = (
            f"upstream's tree puts it under {listed}, all started after it; kei's parent "
            "rule (the latest agent on that branch started no later) gives it none"
        )
    elif not upstream:
        why = f"no agent of this database is on that branch; kei's parent is {parent!r}"
    else:
        why = (
            f"upstream's tree puts it under every agent on that branch ({listed}); kei's "
            f"parent rule picked {parent!r}, the latest started no later"
        )
    report.skip(agent.ref, f"parent_branch {shown(agent.parent_branch)}", why)


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
