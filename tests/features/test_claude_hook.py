"""``kei hook claude-code`` on captured payload shapes (``tests/fixtures/claude_code``):
forks, dones and failures recorded by upstream's rules, replays that append nothing,
malformed payloads that exit 0, append nothing and leave one hook.log line.

Calls run kei's app in this process (typer's runner) against a real SQLite ledger
made by ``kei init``; ``test_claude_hook_parallel.py`` runs real processes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from cli_helpers import cli_env, in_process
from kei.app.ledger.ledger import Ledger
from kei.domain.log.recorded import RecordedEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
SESSION = "8c35adc1-5a4e-4c1b-9d7e-0f3a1b2c3d4e"
ROOT = f"claude-session-{SESSION}"
TASK_ID = "toolu_01DUxK7yBq3nF2mWc9RtLpZa"
AGENT_ID = "toolu_01Wk3e8HvJqP5sTn2xYcBa7M"
PROMPT = "Review src/parser.py for error handling and report findings."


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on branch ``feat/hooks``: the payloads' ``cwd``."""
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "feat/hooks", str(path)], check=True)
    return path


class Hook:
    """``kei hook claude-code`` with a payload, plus what the ledger and hook.log hold."""

    def __init__(self, home: Path, url: str, repo: Path) -> None:
        self.home, self.url, self.repo = home, url, repo
        self.run = in_process(cli_env(home, url))

    def payload(self, name: str, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
        body["cwd"] = str(self.repo)
        body.update(changes)
        return body

    def __call__(self, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        result = self.run("hook", "claude-code", stdin=text)
        assert result.exit_code == 0 and result.stdout == ""

    def events(self) -> list[RecordedEvent]:
        with Ledger.open(self.url) as ledger:
            return list(ledger.read())

    def types(self) -> list[str]:
        return [e.type for e in self.events()]

    def stream(self, agent_id: str) -> list[Any]:
        with Ledger.open(self.url) as ledger:
            return [e.payload() for e in ledger.read_stream(f"agent/{agent_id}")]

    def log_lines(self) -> list[str]:
        path = self.home / "hook.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def hook(tmp_path: Path, sqlite_url: str, repo: Path) -> Hook:
    h = Hook(tmp_path / "home", sqlite_url, repo)
    h.run("init")
    return h


def test_pre_tool_use_on_task_forks_by_upstreams_rules(hook: Hook) -> None:
    hook(hook.payload("pre_task"))
    (root,) = hook.stream(ROOT)
    assert (root.branch, root.creator) == ("feat/hooks", "claude-code")
    (fork,) = hook.stream(TASK_ID)
    assert fork.parent_agent_id == ROOT
    assert fork.parent_branch == "feat/hooks"  # upstream's --parent: the current git branch
    assert fork.spec_sha == sha(PROMPT)[:16]
    assert fork.dna == (
        f"code-reviewer::?::{sha('code-reviewer')[:8]}::{sha(PROMPT)[:8]}-{sha(TASK_ID)[:8]}"
    )
    assert fork.branch.startswith("inline-code-reviewer-")
    assert hook.types()[1:] == ["agent.forked", "agent.forked", "agent.dna.claimed"]
    assert hook.log_lines() == []


def test_worktree_isolation_gets_an_agent_branch(hook: Hook) -> None:
    hook(hook.payload("pre_agent_worktree"))
    (fork,) = hook.stream(AGENT_ID)
    assert fork.branch.startswith("agent/implementer-")


def test_post_tool_use_completes_with_the_subagents_answer(hook: Hook) -> None:
    hook(hook.payload("pre_task"))
    hook(hook.payload("post_task"))
    *_, done = hook.stream(TASK_ID)
    assert type(done).__name__ == "AgentCompleted"
    assert done.summary.startswith("Two findings: parse() swallows OSError")


def test_post_tool_use_failure_fails_with_the_error(hook: Hook) -> None:
    hook(hook.payload("pre_agent_worktree"))
    hook(hook.payload("post_failure_agent"))
    *_, failed = hook.stream(AGENT_ID)
    assert type(failed).__name__ == "AgentFailed"
    assert failed.reason == "Agent stopped: the user interrupted the task (interrupted)"


def test_a_response_with_an_error_status_fails(hook: Hook) -> None:
    body = hook.payload("post_task")
    body["tool_response"] = {**body["tool_response"], "status": "error"}
    hook(body)
    *_, failed = hook.stream(TASK_ID)
    assert type(failed).__name__ == "AgentFailed"


def test_a_background_launch_leaves_the_subagent_running(hook: Hook) -> None:
    """``run_in_background``: PostToolUse comes when the subagent starts, not ends."""
    hook(hook.payload("post_background"))
    assert [type(p).__name__ for p in hook.stream("toolu_01BgR5nq8MfV2cTz6pHsYw3D")] == [
        "AgentForked"
    ]


def test_post_tool_use_without_a_fork_forks_first(hook: Hook) -> None:
    """A hook installed while a subagent ran still records it whole."""
    hook(hook.payload("post_task"))
    assert [type(p).__name__ for p in hook.stream(TASK_ID)] == ["AgentForked", "AgentCompleted"]


@pytest.mark.parametrize("name", ["pre_task", "post_task", "post_failure_agent", "stop"])
def test_replaying_a_payload_appends_nothing(hook: Hook, name: str) -> None:
    hook(hook.payload("pre_agent_worktree"))
    hook(hook.payload(name))
    before = len(hook.events())
    hook(hook.payload(name))
    hook(hook.payload(name))
    assert len(hook.events()) == before
    assert hook.log_lines() == []


def test_stop_closes_the_sessions_root_agent(hook: Hook) -> None:
    hook(hook.payload("pre_task"))
    hook(hook.payload("stop"))
    *_, closed = hook.stream(ROOT)
    assert (type(closed).__name__, closed.summary) == ("AgentCompleted", "closed at Stop")


@pytest.mark.parametrize("name", ["stop", "subagent_stop", "pre_bash"])
def test_calls_that_mean_nothing_append_nothing(hook: Hook, name: str) -> None:
    """Stop with no root agent, SubagentStop (it names no tool_use_id; the
    PostToolUse after it records the end), and tools other than Task/Agent."""
    before = len(hook.events())
    hook(hook.payload(name))
    assert len(hook.events()) == before
    assert hook.log_lines() == []


MALFORMED = {
    "not json": "{not json",
    "empty": "",
    "a list": "[1, 2]",
    "invalid utf-8": b"\xff\xfe{}".decode("latin-1"),
    "no event name": json.dumps({"session_id": "s"}),
    "event name not a string": json.dumps({"hook_event_name": 5, "session_id": "s"}),
    "no session": json.dumps({"hook_event_name": "Stop"}),
    "tool_input a list": json.dumps(
        {"hook_event_name": "PreToolUse", "session_id": "s", "tool_name": "Task",
         "tool_use_id": "t", "tool_input": ["x"]}
    ),
    "tool_use_id a number": json.dumps(
        {"hook_event_name": "PreToolUse", "session_id": "s", "tool_name": "Task",
         "tool_use_id": 7}
    ),
    "session id with a newline": json.dumps({"hook_event_name": "Stop", "session_id": "a\nb"}),
    "deeply nested": "[" * 100_000,
}  # fmt: skip


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_payload_logs_one_line_and_appends_nothing(hook: Hook, text: str) -> None:
    before = hook.events()
    hook(text)
    assert len(hook.events()) == len(before)
    (line,) = hook.log_lines()
    assert "claude-code" in line


def test_no_ledger_is_logged_not_raised(tmp_path: Path, repo: Path) -> None:
    hook = Hook(tmp_path / "home", f"sqlite:///{tmp_path / 'none.db'}", repo)
    hook(hook.payload("pre_task"))
    (line,) = hook.log_lines()
    assert "kei init" in line


def test_a_leaked_secret_in_the_answer_is_withheld_and_the_agent_still_done(hook: Hook) -> None:
    body = hook.payload("post_task")
    token = "ghp_" + "Zq8rT2vX9mK4pL7nB3cW6yH1jF5dS0aG8eQu"
    body["tool_response"]["content"] = [{"type": "text", "text": f"the token is {token}"}]
    hook(body)
    *_, done = hook.stream(TASK_ID)
    assert done.summary == "summary withheld: the leak matrix blocked it"
    assert token not in "".join(hook.log_lines())
    assert len(hook.log_lines()) == 1


def test_hook_log_stays_bounded(tmp_path: Path) -> None:
    from kei.adapters.hooks.hooklog import MAX_LOG_BYTES, log_failure

    home = tmp_path / "home"
    for _ in range(3):
        log_failure(home, "x", "y" * 900)
    (home / "hook.log").write_bytes(b"z" * MAX_LOG_BYTES)
    log_failure(home, "claude-code", "after the cap")
    assert (home / "hook.log").read_text().endswith("claude-code: after the cap\n")
    assert (home / "hook.log.1").stat().st_size == MAX_LOG_BYTES


def test_a_payload_over_the_cap_is_refused_before_parsing() -> None:
    import io

    from kei.adapters.hooks.payload import read_payload
    from kei.errors import InputError

    assert read_payload(io.BytesIO(b"x" * 10), limit=10) == b"x" * 10
    with pytest.raises(InputError, match="over 10 bytes"):
        read_payload(io.BytesIO(b"x" * 11), limit=10)


def test_the_hook_names_agents_as_the_agent_service_does() -> None:
    from kei.app import agents
    from kei.app.hooks import recording

    assert recording.agent_stream("a") == agents.agent_stream("a")
    assert recording.dna_stream("d") == agents.dna_stream("d")


def test_a_session_on_either_store(tmp_path: Path, store_url: str, repo: Path) -> None:
    """Fork, finish, fail, close and replays, on SQLite and on PostgreSQL."""
    hook = Hook(tmp_path / "home", store_url, repo)
    hook.run("init")
    names = ["pre_task", "pre_agent_worktree", "post_task", "post_failure_agent", "stop"]
    for name in names + names:
        hook(hook.payload(name))
    assert hook.types()[1:] == [
        "agent.forked", "agent.forked", "agent.dna.claimed", "agent.forked",
        "agent.dna.claimed", "agent.completed", "agent.failed", "agent.completed",
    ]  # fmt: skip
    assert hook.log_lines() == []


def test_a_fork_landing_between_the_two_reads_is_not_a_dna_collision(
    make_ledger: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A racing call for the same subagent commits its fork and DNA claim after this call
    read the agent stream (empty) and before it reads the DNA stream: that is this
    agent, already forked, not a collision. The interleaving is forced by making the
    agent stream read as it was before the racing commit."""
    from kei.app.hooks.calls import ClaudeCall, fork_request
    from kei.app.hooks.recording import ensure_forked

    ledger = make_ledger(sqlite_url)
    call = ClaudeCall("PreToolUse", "s", tool_name="Task", tool_use_id="toolu_race",
                      tool_input={"prompt": "p"})  # fmt: skip
    request = fork_request(call, None, 0)
    request = type(request)(**{**{f: getattr(request, f) for f in request.__struct_fields__},
                               "parent_agent_id": None})  # fmt: skip
    assert ensure_forked(ledger, request) == 2
    real = ledger.store.stream_version
    monkeypatch.setattr(
        ledger.store, "stream_version", lambda s: 0 if s == "agent/toolu_race" else real(s)
    )
    assert ensure_forked(ledger, request) == 0


def _as_claude_code_runs_it(hook: Hook, body: dict[str, Any], *flags: str) -> str:
    """``python -m kei hook claude-code`` in a real process, as ``kei hooks install``
    writes it; the ``-X importtime`` lines it printed."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kei", "hook", "claude-code", *flags],
        env=cli_env(hook.home, hook.url),
        input=json.dumps(body).encode(),
        capture_output=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, b"")
    return done.stderr.decode()


def test_the_bare_hook_command_skips_typer_and_records_what_typers_path_does(
    hook: Hook, tmp_path: Path
) -> None:
    imports = _as_claude_code_runs_it(hook, hook.payload("pre_task"))
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines()}
    assert {"typer", "rich", "kei.adapters.cli.app"}.isdisjoint(loaded)
    fast = hook.stream(TASK_ID)
    # the same payload through typer (a global option after the command) on a twin ledger
    twin = Hook(tmp_path / "twin-home", f"sqlite:///{tmp_path / 'twin.db'}", hook.repo)
    twin.run("init")
    assert "typer" in {
        line.rsplit("|", 1)[-1].strip()
        for line in _as_claude_code_runs_it(
            twin, twin.payload("pre_task"), "--db", twin.url
        ).splitlines()
    }
    assert [p.agent_id for p in fast] == [p.agent_id for p in twin.stream(TASK_ID)] == [TASK_ID]
    # the same fork but for the branch's unix seconds (the two ran at different times)
    same = [
        replace(p, branch=p.branch.rsplit("-", 1)[0]) for p in (fast[0], twin.stream(TASK_ID)[0])
    ]
    assert same[0] == same[1]
    assert hook.log_lines() == twin.log_lines() == []


def test_the_bare_hook_command_exits_0_when_kei_home_is_a_file(hook: Hook, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    body = hook.payload("pre_task")
    done = subprocess.run(
        [sys.executable, "-m", "kei", "hook", "claude-code"],
        env={**cli_env(hook.home, hook.url), "KEI_HOME": str(not_a_folder)},
        input=json.dumps(body).encode(),
        capture_output=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, b"")
    assert "agent.forked" not in hook.types()
