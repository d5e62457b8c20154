"""The quick budget check (``app/budgets/tail.py``) gives the full fold's answer.

After a cost write the check reads the costs read model as it stands plus the events
after its position, instead of catching it up. Over random histories (costs at random
times, sessions and projects, unpriced ones, amendments of any earlier event or of
none, agents forked into a tree, catch-ups at random points), every budget measured
the quick way equals the same budget measured after a full catch-up.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kei.app import cost_reads
from kei.app.agent_writes import agent_stream
from kei.app.budgets.status import measure
from kei.app.budgets.tail import read_tail
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.budgets.rules import Budget
from kei.domain.events import AgentForked, CostAmended, CostRecorded, Origin, TokenUsage
from kei.domain.log.keys import SigningKey

DAY_US = 86_400_000_000
AT_US = 1_765_000_000_000_000  # the moment measured (December 2025)
AGENTS = ("root", "kid", "other")
SESSIONS = ("s0", "s1", None)
PROJECTS = ("/p0", "/p1", None)
SCOPES = ("all", "session:s0", "project:/p1", "tree:root", "tree:kid", "tree:kid-1")
PERIODS = ("day", "month", "total")

COST = st.tuples(
    st.just("cost"),
    st.integers(0, 8),  # an agent: the three, one forked since, or (8) the next kid fork
    st.integers(0, 5_000_000),
    st.integers(-40 * 24, 3 * 24),  # hours from AT_US: other days, months, the future
    st.sampled_from(SESSIONS),
    st.sampled_from(PROJECTS),
    st.booleans(),
    st.booleans(),  # speed_unpriced
)
AMEND = st.tuples(st.just("amend"), st.integers(0, 30), st.integers(0, 5_000_000), st.booleans())
FORK = st.tuples(st.just("fork"), st.integers(0, 1), st.sampled_from(AGENTS))
CATCH_UP = st.tuples(st.just("catch_up"))
OPS = st.lists(st.one_of(COST, COST, AMEND, FORK, CATCH_UP), max_size=24)


def _apply(ledger: Ledger, ops: list[tuple[Any, ...]]) -> None:
    costs: list[tuple[str, int]] = []  # (stream, version) of every cost event so far
    agents = list(AGENTS)
    forked = 0
    for op in ops:
        if op[0] == "catch_up":
            cost_reads.caught_up(ledger, only=["agents", "costs"])
        elif op[0] == "fork":
            forked += 1
            new = f"{op[2]}-{forked}" if op[1] else f"loose-{forked}"
            parent = op[2] if op[1] else None
            ledger.append([NewEvent(agent_stream(new), AgentForked(
                agent_id=new, branch="b", parent_agent_id=parent))])  # fmt: skip
            agents.append(new)
        elif op[0] == "cost":
            _, which, micro, hours, session, project, unpriced, slow = op
            agent = f"kid-{forked + 1}" if which == 8 else agents[which % len(agents)]
            at = AT_US + hours * 3_600_000_000
            event = CostRecorded(
                agent_id=agent, provider="p", model="m", micro_cents=0 if unpriced else micro,
                usage=TokenUsage(), unpriced=unpriced, session=session, cwd=project,
                speed="fast" if slow else None, speed_unpriced=slow,
                origin=Origin(source="test", occurred_at_us=at, ref=f"{len(costs)}"),
            )  # fmt: skip
            done = ledger.append([NewEvent(agent_stream(agent), event)])[-1]
            costs.append((done.stream, done.version))
        else:
            _, which, micro, known = op
            stream, version = costs[which % len(costs)] if costs and known else ("agent/x", 99)
            agent = stream.removeprefix("agent/")
            event = CostAmended(
                agent_id=agent, supersedes_stream=stream, supersedes_version=version,
                provider="p", model="m", micro_cents=micro, speed_unpriced=micro % 2 == 1,
            )  # fmt: skip
            done = ledger.append([NewEvent(agent_stream(agent), event)])[-1]
            costs.append((done.stream, done.version))


def _budgets() -> list[Budget]:
    return [
        Budget(scope, period, 1_000_000, i)  # type: ignore[arg-type]
        for i, (scope, period) in enumerate(((s, p) for s in SCOPES for p in PERIODS), 1)
    ]


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
@example(ops=[("fork", 1, "kid"), ("cost", 3, 7, 0, None, None, False, True),
              ("amend", 0, 5, True), ("amend", 0, 9, True)])  # fmt: skip
@example(ops=[("cost", 8, 7, 0, None, None, False, False), ("catch_up",), ("fork", 1, "kid"),
              ("cost", 3, 2, 0, None, None, False, True)])  # fmt: skip
@example(ops=[("cost", 1, 7, 0, "s0", "/p1", False, True), ("catch_up",), ("amend", 0, 5, True),
              ("amend", 0, 9, True), ("cost", 0, 3, -24, "s0", None, True, False)])  # fmt: skip
def test_the_quick_check_equals_the_full_fold(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        with Ledger.open(url, key=SigningKey.generate(name="t"), create=True) as ledger:
            ledger.init("test")
            for agent, parent in (("root", None), ("kid", "root"), ("other", None)):
                ledger.append([NewEvent(agent_stream(agent), AgentForked(
                    agent_id=agent, branch="b", parent_agent_id=parent), 0)])  # fmt: skip
            cost_reads.caught_up(ledger, only=["agents", "costs"])
            _apply(ledger, ops)
            # the quick way first (a full measure catches the read models up)
            assert read_tail(ledger, tree=False) is not None  # a few events behind
            used = read_tail(ledger, tree=True) is not None  # both models at one position
            quick = measure(ledger, _budgets(), seal_key=None, at_us=AT_US, quick=True)
            full = measure(ledger, _budgets(), seal_key=None, at_us=AT_US)
            assert [m.spent for m in quick] == [m.spent for m in full], used


def test_a_read_model_far_behind_is_caught_up_instead(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, key=SigningKey.generate(name="t"), create=True) as ledger:
        ledger.init("test")
        cost_reads.caught_up(ledger, only=["costs"])
        for i in range(5):
            event = CostRecorded(agent_id="a", provider="p", model="m", micro_cents=i)
            ledger.append([NewEvent(agent_stream("a"), event)])
        assert read_tail(ledger, tree=False) is not None
        assert read_tail(ledger, tree=False, most=3) is None
        assert read_tail(ledger, tree=True) is None  # no agents read model yet
