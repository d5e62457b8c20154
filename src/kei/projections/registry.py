"""The projections kei ships, in one list: what ``kei projections`` keeps up to date.

A new read model is added here (and nowhere else) to be caught up, rebuilt and
shown by the CLI. Each call returns fresh instances, because a projection binds its
``Table`` objects when the engine calls ``define``.
"""

from __future__ import annotations

from kei.projections.agents import Agents
from kei.projections.base import Projection
from kei.projections.costs import Costs
from kei.projections.event_counts import EventCounts
from kei.projections.memory import Memory
from kei.projections.posteriors import Posteriors
from kei.projections.projects import Projects
from kei.projections.skills import Skills
from kei.projections.traces import Traces


def default_projections() -> list[Projection]:
    """Fresh instances of every shipped projection."""
    return [
        EventCounts(),
        Skills(),
        Agents(),
        Costs(),
        Posteriors(),
        Memory(),
        Traces(),
        Projects(),
    ]
