"""A Claude Code projects tree built in the tests, in the real line format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccusage_peer import Ccusage, find_ccusage
from claude_transcripts import assistant, task_result, user, write

S1, S2 = "11111111-aaaa", "22222222-bbbb"


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    """Two sessions of one project: S1 with a streamed (repeated) message, an old-style
    sidechain line, a Task that ran sub-agent ``a1`` (its own file repeats one of S1's
    messages) and four bad lines; S2, resumed from S1, copies one of S1's lines and bills
    one more message six hours later on a dated alias."""
    root = tmp_path / "projects"
    proj = root / "-home-dev-proj"
    m1 = assistant(
        S1,
        "msg_1",
        "req_1",
        "2026-03-01T10:00:00.000Z",
        tokens_in=10,
        tokens_out=100,
        cache_write=2000,
        cache_read=50000,
        cache_1h=500,
    )
    m2 = assistant(
        S1,
        "msg_2",
        "req_2",
        "2026-03-01T10:30:00.000Z",
        sidechain=True,
        tokens_in=20,
        tokens_out=200,
    )
    bad_type = assistant(S1, "msg_x", "req_x", "2026-03-01T10:40:00.000Z")
    bad_type["message"]["usage"]["input_tokens"] = "many"
    synthetic = assistant(S1, "msg_s", "req_s", "2026-03-01T10:41:00.000Z", model="<synthetic>")
    write(proj / f"{S1}.jsonl", [
        user(S1, "hello", "2026-03-01T09:59:00.000Z"),
        m1, m1,  # streaming writes one request twice
        m2,
        task_result(S1, "toolu_A", "a1", "2026-03-01T10:25:00.000Z"),
        "{not json",
        json.dumps(bad_type),
        json.dumps(synthetic),
        "[1, 2]",
        json.dumps({"type": "summary", "summary": "x", "leafUuid": 5}),
    ])  # fmt: skip
    write(proj / S1 / "subagents" / "agent-a1.jsonl", [
        assistant(S1, "msg_3", "req_3", "2026-03-01T10:20:00.000Z", sidechain=True,
                  agent_id="a1", model="claude-haiku-4-5", tokens_in=1000, tokens_out=10),
        m1,  # a sub-agent file may repeat the parent's lines
    ])  # fmt: skip
    write(proj / f"{S2}.jsonl", [
        m2,  # the resumed session's copy
        assistant(S2, "msg_4", "req_4", "2026-03-01T16:00:00.000Z",
                  model="claude-haiku-4-5-20251001", tokens_in=100, tokens_out=1000),
    ])  # fmt: skip
    return root


@pytest.fixture
def in_kei() -> object:
    """``in_kei(store_url, home, **env)``: kei in this process on a fresh ``kei init``."""
    from cli_helpers import cli_env, in_process

    def make(url: str, home: Path, **env: str) -> object:
        run = in_process(cli_env(home, url, **env))
        run("init")
        return run

    return make


@pytest.fixture(scope="session")
def ccusage(request: pytest.FixtureRequest) -> Ccusage:
    """The ccusage ``KEI_TEST_CCUSAGE`` names; skips, saying so, when it names none
    (``.ci/run`` sets it and fails on this skip)."""
    found = find_ccusage(request.config.rootpath)
    if isinstance(found, str):
        pytest.skip(found)
    return found
