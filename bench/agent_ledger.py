"""A realistic agent ledger for the read-model benchmarks, built once and cached.

``agents`` agents in sessions of 100: each session has a root agent under one
orchestrator agent, and every other agent's parent is an earlier agent of its session.
Per agent: ``agent.forked`` and its ``agent.dna.claimed``, 1 to 8 ``cost.recorded``
(mean 4.5), done (90 %) or failed, an outcome for most, merged for half, and 0 to 4
``skill.invoked``: about 10.6 events per agent, so 100,000 agents make a log of about
1,060,000 events, spread over 30 simulated days. Every event obeys the domain rules,
so the projections fold all of them.

    .venv/bin/python bench/agent_ledger.py --agents 100000   # builds the cache
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import BENCH_TMP, MODELS
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents.dna import build_dna
from kei.domain.events import (
    AgentCompleted,
    AgentFailed,
    AgentForked,
    AgentMerged,
    CostRecorded,
    DnaClaimed,
    OutcomeRecorded,
    Payload,
    SkillInvoked,
    TokenUsage,
)
from kei.domain.log.keys import SigningKey

SESSION = 100
ROOT = "orchestrator"
SKILLS = ("rust-fmt", "cargo-test", "grep-repo", "write-plan", "review-diff", "open-pr")
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30


def agent_id(n: int) -> str:
    return f"agent-{n:06d}"


def parent_of(n: int, rng: random.Random) -> str:
    """Session roots hang under the orchestrator; others under an earlier session agent."""
    first = n - n % SESSION
    return ROOT if n == first else agent_id(rng.randrange(first, n))


def agent_events(n: int, rng: random.Random) -> Iterator[tuple[str, Payload]]:
    """One agent's life, in stream order."""
    me, stream = agent_id(n), f"agent/{agent_id(n)}"
    dna = str(build_dna("coder", ["rust", "test"], f"scope{n % 50}", f"task{n}", n.to_bytes(4)))
    yield (
        stream,
        AgentForked(
            agent_id=me,
            branch=f"agent/{me}",
            parent_agent_id=parent_of(n, rng),
            parent_branch="main",
            spec_sha=f"{n:016x}",
            dna=dna,
            creator="human:bench",
        ),
    )
    yield f"dna/{dna}", DnaClaimed(dna=dna, agent_id=me)
    for call in range(rng.randint(1, 8)):
        tokens_in, tokens_out = rng.randrange(500, 40_000), rng.randrange(50, 6_000)
        yield (
            stream,
            CostRecorded(
                agent_id=me,
                provider="anthropic" if call % 3 else "openai",
                model=MODELS[(n + call) % len(MODELS)],
                micro_cents=tokens_in * 300 + tokens_out * 1500,
                usage=TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out),
            ),
        )
    if rng.random() < 0.9:
        yield stream, AgentCompleted(agent_id=me, summary=f"finished task {n}")
    else:
        yield stream, AgentFailed(agent_id=me, reason="tests failed")
    if rng.random() < 0.8:
        outcome = rng.choice(("functional", "functional", "partial", "scaffolding", "fail"))
        yield stream, OutcomeRecorded(agent_id=me, outcome=outcome, escalation_depth=0)
    if rng.random() < 0.5:
        yield stream, AgentMerged(agent_id=me)
    for _ in range(rng.randint(0, 4)):
        skill = rng.choice(SKILLS)
        yield (
            f"skill/{skill}",
            SkillInvoked(
                skill_name=skill,
                success=rng.random() < 0.85,
                duration_ms=rng.randrange(50, 5_000),
                agent_id=me,
            ),
        )


class Clock:
    """Simulated time: each batch lands a little later, over ``DAYS`` days in all."""

    def __init__(self, batches: int) -> None:
        self.now = START
        self.step = timedelta(days=DAYS) / max(batches, 1)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def build(path: Path, agents: int, batch_agents: int = 100) -> None:
    key = SigningKey(b"\x06" * 32, name="bench")
    rng = random.Random(11)
    with Ledger.open(
        f"sqlite:///{path}", key=key, create=True, synchronous="OFF", clock=Clock(agents // 100)
    ) as ledger:
        ledger.init("bench-agents")
        ledger.append([NewEvent("agent/" + ROOT, AgentForked(agent_id=ROOT, branch="main"))])
        for lo in range(0, agents, batch_agents):
            batch = [
                NewEvent(stream, payload)
                for n in range(lo, min(lo + batch_agents, agents))
                for stream, payload in agent_events(n, rng)
            ]
            ledger.append(batch)


def cached_agent_ledger(agents: int) -> Path:
    """The path of a ledger of ``agents`` agents (plus the orchestrator), built once."""
    BENCH_TMP.mkdir(parents=True, exist_ok=True)
    path = BENCH_TMP / f"agents-{agents}.db"
    done = path.with_suffix(".done")
    if done.exists() and path.exists():
        return path
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    build(path, agents)
    done.write_text(f"{agents}\n")
    print(f"built {agents:,} agents in {time.perf_counter() - started:.0f} s: {path}")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100_000)
    print(cached_agent_ledger(parser.parse_args().agents))
