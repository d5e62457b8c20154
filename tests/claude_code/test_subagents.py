"""The pure side of sub-agent lifecycles: the Task calls an assistant line makes, the
result that ends each one (done, failed, still running), the links, and the typed usage
converter agreeing with the one for plain JSON."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from claude_transcripts import task_call, task_error, task_result
from kei.domain.catalog.usage import from_anthropic
from kei.domain.claude_code.transcript import (
    AnthropicUsage,
    Billed,
    CacheCreation,
    Link,
    TaskCall,
    TaskResult,
    parse_line,
    token_usage,
)

AT = "2026-03-01T10:00:00Z"


def line(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_an_assistant_line_names_its_task_calls() -> None:
    got = parse_line(line(task_call("s", "m1", "toolu_1", AT)), 1, "s")
    assert isinstance(got, Billed) and got.calls == (TaskCall("toolu_1", False, "Task"),)
    later = parse_line(line(task_call("s", "m2", "toolu_2", AT, tool="Agent", background=True)),
                       2, "s")  # fmt: skip
    assert isinstance(later, Billed) and later.calls == (TaskCall("toolu_2", True, "Agent"),)
    other = task_call("s", "m3", "toolu_3", AT)
    other["message"]["content"][0]["name"] = "Read"
    plain = parse_line(line(other), 3, "s")
    assert isinstance(plain, Billed) and plain.calls == ()
    own = parse_line(line(task_call("s", "m4", "toolu_4", AT)), 4, "s", agent="a1")
    assert isinstance(own, Billed) and own.calls == ()  # a sub-agent's file starts none


def test_the_result_of_a_task_call_says_how_it_ended() -> None:
    done = task_result("s", "toolu_1", "ab12", AT, answer="found 3 bugs")
    assert parse_line(line(done), 5, "s", tasks={"toolu_1"}) == TaskResult(
        "toolu_1", False, "found 3 bugs", "completed", "ab12"
    )
    failed = task_error("s", "toolu_2", AT, "Agent type 'x' not found")
    assert parse_line(line(failed), 6, "s", tasks={"toolu_2"}) == TaskResult(
        "toolu_2", True, "<tool_use_error>Agent type 'x' not found</tool_use_error>"
    )
    launched = task_result("s", "toolu_3", "cd34", AT, status="async_launched")
    got = parse_line(line(launched), 7, "s", tasks={"toolu_3"})
    assert isinstance(got, TaskResult) and got.status == "async_launched"


def test_results_of_other_calls_are_links_or_nothing() -> None:
    done = task_result("s", "toolu_1", "ab12", AT)
    assert parse_line(line(done), 1, "s") == Link("ab12", "toolu_1")  # no call seen
    assert parse_line(line(task_error("s", "toolu_2", AT, "no")), 2, "s") is None
    assert parse_line(line(done), 3, "s", agent="ab12", tasks={"toolu_1"}) is None
    two = task_result("s", "toolu_1", "ab12", AT)
    two["message"]["content"].append({**two["message"]["content"][0], "tool_use_id": "toolu_9"})
    assert parse_line(line(two), 4, "s", tasks={"toolu_1"}) is None  # one result per line


def test_a_progress_line_quoting_a_subagents_error_is_not_a_result() -> None:
    quoted = task_error("s", "toolu_1", AT, "File does not exist.")
    progress = {"type": "progress", "sessionId": "s", "timestamp": AT,
                "parentToolUseID": "toolu_1",
                "data": {"type": "agent_progress", "agentId": "ab12",
                         "message": {"type": "user", "message": quoted["message"]}}}  # fmt: skip
    assert parse_line(line(progress), 1, "s", tasks={"toolu_1"}) is None


counts = st.integers(min_value=-5, max_value=10**12)
usages = st.builds(
    AnthropicUsage,
    input_tokens=counts,
    output_tokens=counts,
    cache_creation_input_tokens=counts,
    cache_read_input_tokens=counts,
    cache_creation=st.none() | st.builds(CacheCreation, st.none() | counts, st.none() | counts),
    service_tier=st.none() | st.just("standard"),
)


@given(usages)
def test_the_typed_usage_converter_agrees_with_the_json_one(usage: AnthropicUsage) -> None:
    assert token_usage(usage) == from_anthropic(msgspec.to_builtins(usage))
