"""Sixty-four ``kei hook claude-code`` processes at once for one session's agent tree,
on SQLite and PostgreSQL: every call recorded exactly once, in whatever order the
calls land (a PostToolUse that lands before its PreToolUse forks the agent itself)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cli_helpers import cli_env, in_process
from kei.app.ledger.ledger import Ledger

pytestmark = pytest.mark.slow
AGENTS = 32  # a PreToolUse and a PostToolUse each: 64 calls
SESSION = "parallel-session"
COSTED = 16  # two cost records each: 32 calls


def payload(event: str, n: int, cwd: Path) -> bytes:
    body = {
        "session_id": SESSION,
        "transcript_path": f"/tmp/{SESSION}.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": event,
        "tool_name": "Task" if n % 2 else "Agent",
        "tool_input": {"prompt": f"task {n}", "subagent_type": f"worker-{n % 4}"},
        "tool_use_id": f"toolu_{n:04d}",
    }
    if event == "PostToolUse":
        body["tool_response"] = {
            "status": "completed",
            "content": [{"type": "text", "text": f"did {n}"}],
        }
    return json.dumps(body).encode()


def test_64_parallel_hook_calls_are_each_recorded_once(store_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home, store_url)
    in_process(env)("init")
    with Ledger.open(store_url) as ledger:
        before = ledger.store.count()
    calls = [payload(e, n, tmp_path) for n in range(AGENTS) for e in ("PreToolUse", "PostToolUse")]
    random.Random(16).shuffle(calls)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kei", "hook", "claude-code"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in calls
    ]
    for proc, body in zip(procs, calls, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(body)
        proc.stdin.close()
    outs = [(proc.wait(timeout=300), proc.stdout.read() if proc.stdout else b"") for proc in procs]
    for proc in procs:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert outs == [(0, b"")] * len(calls)
    assert not (home / "hook.log").exists(), (home / "hook.log").read_text()
    with Ledger.open(store_url) as ledger:
        events = list(ledger.read(after=0))[before:]
        assert ledger.verify().ok
    kinds = Counter((e.type, e.stream) for e in events)
    expected = Counter({("agent.forked", f"agent/claude-session-{SESSION}"): 1})
    for n in range(AGENTS):
        expected[("agent.forked", f"agent/toolu_{n:04d}")] = 1
        expected[("agent.completed", f"agent/toolu_{n:04d}")] = 1
    claims = Counter(e.type for e in events if e.type == "agent.dna.claimed")
    assert (
        kinds - Counter({k: v for k, v in kinds.items() if k[0] == "agent.dna.claimed"}) == expected
    )
    assert claims["agent.dna.claimed"] == AGENTS
    assert len(events) == 1 + 3 * AGENTS


def test_parallel_cost_records_for_the_tree_are_each_recorded_once(
    store_url: str, tmp_path: Path
) -> None:
    """The tree the hooks built gets its costs the way an orchestrator's own hook would
    record them (``kei cost record``), 32 processes at once, two per subagent: every
    amount lands once and each agent's total is the sum of its two. (Unlike the hook,
    which waits for a free PostgreSQL connection, a CLI write that finds the server's
    connection slots full exits 3 with one line; 64 at once can meet the 100-slot limit
    of the test server while the suite holds its own connections.)"""
    home = tmp_path / "home"
    env = cli_env(home, store_url)
    run = in_process(env)
    run("init")
    for n in range(COSTED):
        run("agent", "fork", f"toolu_{n:04d}", f"agent/{n}")
    with Ledger.open(store_url) as ledger:
        before = ledger.store.count()
    argv = [
        [sys.executable, "-m", "kei", "cost", "record", f"toolu_{n:04d}", "--provider",
         "anthropic", "--model", "claude-haiku-4-5", "--micro-cents", str(1000 * n + k)]
        for n in range(COSTED) for k in (1, 2)
    ]  # fmt: skip
    random.Random(17).shuffle(argv)
    running = [
        subprocess.Popen(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for a in argv
    ]
    errors = [(p.wait(timeout=300), p.stderr.read() if p.stderr else b"") for p in running]
    for p in running:
        if p.stderr is not None:
            p.stderr.close()
    assert [code for code, _ in errors] == [0] * len(argv), errors
    with Ledger.open(store_url) as ledger:
        events = list(ledger.read(after=before))
        assert ledger.verify().ok
    assert Counter(e.type for e in events) == Counter({"cost.recorded": 2 * COSTED})
    totals: Counter[str] = Counter()
    for event in events:
        payload_ = event.payload()
        totals[payload_.agent_id] += payload_.micro_cents  # type: ignore[attr-defined]
    assert totals == Counter({f"toolu_{n:04d}": 2000 * n + 3 for n in range(COSTED)})
