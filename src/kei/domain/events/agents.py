"""Agent work as events: forks, completions, failures, merges, DNA, costs, outcomes, skills."""

from __future__ import annotations

from kei.domain.events.payload import Origin, Outcome, Payload, TokenUsage


class AgentForked(Payload, frozen=True, kw_only=True):
    """An agent started on a branch, possibly as the child of another agent."""

    agent_id: str
    branch: str
    parent_agent_id: str | None = None
    parent_branch: str | None = None
    spec_sha: str | None = None
    worktree: str | None = None
    dna: str | None = None
    creator: str | None = None
    fork_parent: str | None = None
    origin: Origin | None = None


class AgentCompleted(Payload, frozen=True, kw_only=True):
    """An agent finished its work."""

    agent_id: str
    summary: str
    origin: Origin | None = None


class AgentFailed(Payload, frozen=True, kw_only=True):
    """An agent gave up or crashed."""

    agent_id: str
    reason: str
    origin: Origin | None = None


class AgentMerged(Payload, frozen=True, kw_only=True):
    """An agent's branch was merged."""

    agent_id: str
    origin: Origin | None = None


class DnaClaimed(Payload, frozen=True, kw_only=True):
    """A DNA taken by an agent, appended at version 0 of stream ``dna/<dna>`` in the
    fork's batch, so two racing forks with one DNA cannot both land."""

    dna: str
    agent_id: str


class CostRecorded(Payload, frozen=True, kw_only=True):
    """What one model call cost, in integer micro-cents (1 cent = 1,000,000).

    ``usage`` counts tokens by tier in ``TokenUsage``'s convention (input includes
    cached tokens). A cost priced from the catalog names the entry that priced it
    (``price_entry_id`` and ``price_entry_hash``, which covers every tier's rate), so
    the amount can be computed again from the log. ``unpriced`` (schema 3) marks a
    call the catalog had no price for: ``micro_cents`` is then 0 and means "unknown",
    and a report counts the call as unpriced, never as $0. Its default, False, is
    what every event written before the field existed means.

    ``speed`` (schema 5) is the speed the call ran at when not the standard one
    (Anthropic's ``usage.speed``, ``"fast"``); None means standard or not reported.
    ``speed_unpriced`` marks a call made at a speed its price entry has no rates for:
    ``micro_cents`` is then the price at standard rates, less than what was billed,
    and a report says so. Both default to what events written before them mean.
    """

    agent_id: str
    provider: str
    model: str
    micro_cents: int
    usage: TokenUsage = TokenUsage()
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    origin: Origin | None = None
    unpriced: bool = False
    session: str | None = None  # the Claude Code session it was billed in (schema 4)
    cwd: str | None = None  # the session's working directory, its project (schema 4)
    speed: str | None = None  # schema 5
    speed_unpriced: bool = False  # schema 5


class OutcomeRecorded(Payload, frozen=True, kw_only=True):
    """How well an agent's work turned out: the router's success signal.

    Upstream had the columns (v9) but no writer; this event is the writer.
    ``escalation_depth`` 0 means first pass; ``None`` means unknown, as does a
    ``None`` ``stub_count`` (the number of ``todo!()``/``unimplemented!()`` left).
    """

    agent_id: str
    outcome: Outcome
    escalation_depth: int | None = None
    stub_count: int | None = None
    origin: Origin | None = None


class CostAmended(Payload, frozen=True, kw_only=True):
    """Replaces one earlier cost event (upstream's ``record-cost --replace``).

    The superseded event is named by its stream and version, which its signature
    covers and which no store, restore or import renumbers (a position is
    assigned by the store and is not signed). It may name a ``cost.recorded`` or
    an earlier ``cost.amended``; the amount here replaces that event's amount.
    ``usage``, the price entry, ``unpriced``, ``speed`` and ``speed_unpriced`` (schema
    4) mean what they mean in :class:`CostRecorded`.
    """

    agent_id: str
    supersedes_stream: str
    supersedes_version: int
    provider: str
    model: str
    micro_cents: int
    usage: TokenUsage = TokenUsage()
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    reason: str | None = None
    origin: Origin | None = None
    unpriced: bool = False
    speed: str | None = None  # schema 4
    speed_unpriced: bool = False  # schema 4


class SkillInvoked(Payload, frozen=True, kw_only=True):
    """One use of a skill, successful or not (upstream ``skill_invocations``)."""

    skill_name: str
    success: bool
    duration_ms: int | None = None
    agent_id: str | None = None
    trajectory_id: str | None = None
    origin: Origin | None = None
