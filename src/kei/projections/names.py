"""What plain-SQL readers need to know of the read models, without importing SQLAlchemy.

``kei.app.cost_reads`` answers ``kei cost report`` and ``kei agent tree`` in plain
SQL and must first check that the tables it reads are the ones this code defines (same
version) and carry the indexes its queries rely on. The projection modules take their
versions from here; ``tests/projections/test_cost_reads.py`` checks that the names below match the
SQLAlchemy definitions, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Final

AGENTS: Final = "agents"
AGENTS_VERSION: Final = 1
COSTS: Final = "costs"
COSTS_VERSION: Final = (
    4  # 2: the time index is on call_us alone; 3: session, project; 4: speed_unpriced
)

POSTERIORS: Final = "posteriors"
POSTERIORS_VERSION: Final = 1
POSTERIORS_TABLE: Final = "posteriors_counts"

AGENTS_TABLE: Final = "agents_agents"
COSTS_TABLE: Final = "costs_events"
AGENT_COLUMNS: Final = (
    "id", "branch", "parent_agent_id", "parent_branch", "spec_sha", "worktree", "dna",
    "creator", "fork_parent", "status", "summary", "reason", "outcome", "escalation_depth",
    "stub_count", "forked_us", "finished_us", "stream_version",
)  # fmt: skip
# The tree's recursive step walks parents; its cost subqueries probe one agent's costs.
TREE_INDEXES: Final = ("agents_agents_parent_agent_id_idx", "costs_events_agent_idx")
