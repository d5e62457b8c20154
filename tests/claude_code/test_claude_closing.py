"""``kei import claude-code`` closes the sub-agents its transcripts show ended, by the
hook's rules: done on a Task result, failed on ``is_error``, once, never an agent the
hook (or anyone) closed already, never a background call that only launched; on both
stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_transcripts import assistant, task_call, task_error, task_result, user, write
from kei.adapters.files.catalog import load_catalog
from kei.app.agent_writes import agent_state
from kei.app.hooks.calls import ClaudeCall
from kei.app.hooks.recording import record
from kei.app.importers.claude_closing import close_ended
from kei.app.importers.claude_code import import_claude_code
from kei.app.importers.claude_report import ClaudeImportReport
from kei.app.importers.claude_seen import Seen
from kei.app.ledger.ledger import Ledger
from kei.domain.claude_code.subagents import TaskCall, TaskResult

S = "33333333-cccc"
PROJECT = "-home-dev-proj"


def _session(root: Path, *lines: dict[str, object], agents: tuple[str, ...] = ()) -> Path:
    """Session S: a prompt, then ``lines``; each of ``agents`` bills one message in its
    own sub-agent file."""
    write(root / PROJECT / f"{S}.jsonl", [user(S, "go", "2026-03-01T09:00:00Z"), *lines])
    for n, agent in enumerate(agents):
        write(root / PROJECT / S / "subagents" / f"agent-{agent}.jsonl", [
            assistant(S, f"msg_{agent}", f"req_{agent}", f"2026-03-01T09:1{n}:00Z",
                      sidechain=True, agent_id=agent, model="claude-haiku-4-5"),
        ])  # fmt: skip
    return root


def _hook(
    ledger: Ledger, event: str, tool_use_id: str, answer: str | None = None, error: str = ""
) -> None:
    """What ``kei hook claude-code`` records for one call about the sub-agent."""
    call = ClaudeCall(event=event, session_id=S, tool_name="Task", tool_use_id=tool_use_id,
                      tool_input={"subagent_type": "Explore", "prompt": "look"},
                      tool_response={"content": answer} if answer else None, error=error)  # fmt: skip
    record(ledger, call, lambda: None, 1772355600)


def _status(ledger: Ledger, agent: str) -> tuple[str, str | None, str | None]:
    found = agent_state(ledger, agent).agents[agent]
    return found.status, found.summary, found.reason


def _types(ledger: Ledger, agent: str) -> list[str]:
    return [e.type for e in ledger.read_stream(f"agent/{agent}")]


def test_a_task_result_closes_the_subagent_once(ledger: Ledger, tmp_path: Path) -> None:
    root = _session(tmp_path / "projects",
                    task_call(S, "msg_t", "toolu_ok", "2026-03-01T09:05:00Z"),
                    task_result(S, "toolu_ok", "a1", "2026-03-01T09:20:00Z",
                                answer="found 3 bugs"),
                    agents=("a1",))  # fmt: skip
    report = import_claude_code(ledger, [root], load_catalog(None))
    assert (report.agents_forked, report.agents_closed, report.refused) == (2, 1, [])
    assert _status(ledger, "toolu_ok") == ("done", "found 3 bugs", None)
    assert _types(ledger, "toolu_ok") == ["agent.forked", "agent.completed", "cost.recorded"]
    head = ledger.store.max_position()
    again = import_claude_code(ledger, [root], load_catalog(None))
    assert (again.agents_closed, again.events_appended) == (0, 0)
    assert ledger.store.max_position() == head  # a re-import appends nothing


def test_an_error_result_fails_the_subagent(ledger: Ledger, tmp_path: Path) -> None:
    _hook(ledger, "PreToolUse", "toolu_bad")  # the hook forked it; its end never reached it
    root = _session(tmp_path / "projects",
                    task_call(S, "msg_t", "toolu_bad", "2026-03-01T09:05:00Z"),
                    task_error(S, "toolu_bad", "2026-03-01T09:06:00Z",
                               "[Request interrupted by user for tool use]"))  # fmt: skip
    report = import_claude_code(ledger, [root], load_catalog(None))
    assert report.agents_closed == 1
    reason = "<tool_use_error>[Request interrupted by user for tool use]</tool_use_error>"
    assert _status(ledger, "toolu_bad") == ("failed", None, reason)
    assert import_claude_code(ledger, [root], load_catalog(None)).agents_closed == 0


@pytest.mark.parametrize("hook_end", ["PostToolUse", "PostToolUseFailure"])
def test_an_agent_the_hook_closed_is_not_closed_again(
    ledger: Ledger, tmp_path: Path, hook_end: str
) -> None:
    _hook(ledger, "PreToolUse", "toolu_h")
    _hook(ledger, hook_end, "toolu_h", answer="hook's answer", error="boom")
    closed = _status(ledger, "toolu_h")
    assert closed[0] in ("done", "failed")
    root = _session(tmp_path / "projects",
                    task_call(S, "msg_t", "toolu_h", "2026-03-01T09:05:00Z"),
                    task_result(S, "toolu_h", "a1", "2026-03-01T09:20:00Z",
                                answer="the transcript's answer"),
                    agents=("a1",))  # fmt: skip
    before = _types(ledger, "toolu_h")
    report = import_claude_code(ledger, [root], load_catalog(None))
    assert (report.agents_closed, report.refused) == (0, [])
    assert _status(ledger, "toolu_h") == closed  # the hook's close stands
    assert _types(ledger, "toolu_h") == [*before, "cost.recorded"]


def test_a_close_that_lost_a_race_to_the_hook_appends_nothing(ledger: Ledger) -> None:
    _hook(ledger, "PreToolUse", "toolu_r")
    report = ClaudeImportReport(["x"])
    with Seen.from_log(ledger) as seen:  # read while the agent was running
        _hook(ledger, "PostToolUseFailure", "toolu_r", error="boom")
        head = ledger.store.max_position()
        ended = TaskResult("toolu_r", False, "all done", "completed", "a1")
        close_ended(ledger, S, [ended], {"toolu_r": TaskCall("toolu_r")}, seen=seen,
                    report=report)  # fmt: skip
        assert seen.closed(["toolu_r"]) == {"toolu_r"}
    assert (report.agents_closed, report.refused) == (0, [])
    assert ledger.store.max_position() == head
    assert _status(ledger, "toolu_r") == ("failed", None, "boom")


def test_a_background_call_that_only_launched_stays_running(ledger: Ledger, tmp_path: Path) -> None:
    root = _session(tmp_path / "projects",
                    task_call(S, "msg_t", "toolu_bg", "2026-03-01T09:05:00Z", background=True),
                    task_result(S, "toolu_bg", "a1", "2026-03-01T09:05:01Z",
                                answer="Async agent launched", status="async_launched"),
                    agents=("a1",))  # fmt: skip
    report = import_claude_code(ledger, [root], load_catalog(None))
    assert (report.agents_forked, report.agents_closed) == (2, 0)
    assert _status(ledger, "toolu_bg")[0] == "running"


def test_a_dry_run_counts_the_closes_and_appends_nothing(ledger: Ledger, tmp_path: Path) -> None:
    root = _session(tmp_path / "projects",
                    task_call(S, "msg_t", "toolu_ok", "2026-03-01T09:05:00Z"),
                    task_result(S, "toolu_ok", "a1", "2026-03-01T09:20:00Z"),
                    task_call(S, "msg_u", "toolu_unknown", "2026-03-01T09:21:00Z"),
                    task_error(S, "toolu_unknown", "2026-03-01T09:22:00Z", "no such agent"),
                    agents=("a1",))  # fmt: skip
    head = ledger.store.max_position()
    report = import_claude_code(ledger, [root], load_catalog(None), dry_run=True)
    assert report.agents_closed == 1  # toolu_ok would be forked; nothing knows toolu_unknown
    assert ledger.store.max_position() == head
