"""The demo's memory and retrospectives: ``kei memory`` writes and searches (and the leak
matrix refusing a secret), ``kei retro`` ingesting a transcript twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kei.adapters.cli.demo.run import DemoRun

if TYPE_CHECKING:
    from kei.app.memory import MemoryService


def step_memory(run: DemoRun) -> None:
    """``kei memory``: two notes written, one rewritten (the log keeps both), and a
    full-text search that finds the latest value."""
    from kei.app.memory import MemoryService
    from kei.domain.events.memory import MemoryWritten

    notes = (
        ("retry-policy", "jittered exponential backoff, at most 5 tries", ("rust", "retry")),
        ("flaky-test", "test_backoff_jitter times out under load; raise its timeout", ("ci",)),
        ("retry-policy", "jittered exponential backoff, at most 6 tries", ("rust", "retry")),
    )
    with MemoryService(run.open()) as memory:
        for key, value, tags in notes:
            memory.write(MemoryWritten(namespace="default", key=key, value=value,
                                       kind="concept", tags=tags))  # fmt: skip
        found = memory.search("backoff tries")
        refused = _refused_secret(memory)
    run.say(f"[memory] kei memory write: {len(notes)} writes, 2 keys (the log keeps both "
            "values of retry-policy)")  # fmt: skip
    for item in found:
        run.say(f"[memory] kei memory search 'backoff tries': {item['key']} = {item['value']}")
    run.say(f"[leaks] kei memory write deploy-creds 'AKIA…': {refused}")


def _refused_secret(memory: MemoryService) -> str:
    """A fake AWS key (the documented format, not a real key) never reaches the log."""
    from kei.domain.events.memory import MemoryWritten
    from kei.errors import LeakBlockedError

    fake = "AKIA" + "Q7RZ5W3NPL4HGT2X"
    try:
        memory.write(MemoryWritten(namespace="default", key="deploy-creds", value=f"key {fake}"))
    except LeakBlockedError as exc:
        return str(exc)
    return "written (the leak matrix did not stop it)"


def step_retro(run: DemoRun) -> None:
    """``kei retro``: a small Claude Code transcript ingested twice (the second time
    appends nothing), and the session's retrospective from the trace's own times."""
    import json

    from kei.adapters.files.leaks import shipped_matrix
    from kei.app.retro import RetroService
    from kei.domain.retro.sessions import retrospective

    path = run.folder / "session.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in _transcript()))
    with RetroService(run.open(), shipped_matrix()) as retro:
        first, again = retro.ingest(path, "demo"), retro.ingest(path, "demo")
        found = retrospective(retro.events("demo"), "demo")
    run.say(f"[retro] kei retro ingest session.jsonl --session demo: {first.appended} events; "
            f"again: {again.appended} appended, {again.known} already in the log")  # fmt: skip
    assert found is not None
    seconds = (found.duration_us or 0) // 1_000_000
    tools = ", ".join(f"{name} ({n})" for name, n in found.top_tools)
    run.say(f"[retro] kei retro show demo: {found.events} events, {found.tool_calls} tool calls, "
            f"{found.errors} error, {seconds} s; tools: {tools}")  # fmt: skip


def _transcript() -> list[dict[str, object]]:
    """Six lines in Claude Code's transcript format: a prompt, a read, a failing test run."""

    def line(kind: str, second: int, content: object) -> dict[str, object]:
        return {"type": kind, "timestamp": f"2026-11-25T09:00:{second:02d}.000Z",
                "sessionId": "demo", "cwd": "/repo",
                "message": {"role": kind, "content": content}}  # fmt: skip

    def use(name: str, tool_id: str, **given: str) -> dict[str, object]:
        return {"type": "tool_use", "id": tool_id, "name": name, "input": given}

    def result(tool_id: str, text: str, error: bool) -> dict[str, object]:
        return {"type": "tool_result", "tool_use_id": tool_id, "content": text, "is_error": error}

    return [
        line("user", 0, "Add jitter to the retry backoff in src/retry.rs and run the tests."),
        line("assistant", 4, [use("Read", "t1", file_path="/repo/src/retry.rs")]),
        line("user", 5, [result("t1", "fn backoff(attempt: u32) -> Duration { .. }", False)]),
        line("assistant", 31, [use("Edit", "t2", file_path="/repo/src/retry.rs")]),
        line("assistant", 40, [use("Bash", "t3", command="cargo test retry")]),
        line("user", 52, [result("t3", "test backoff_jitter ... FAILED (timeout)", True)]),
    ]
