"""The pure side: what a transcript line says (billed, link, malformed, nothing), the
file reader's bounds, and the 5-hour blocks with their burn rate."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from claude_transcripts import assistant, task_result, user, write
from kei.app.importers import claude_files
from kei.domain.claude_code.blocks import BLOCK_US, HOUR_US, Spend, blocks
from kei.domain.claude_code.transcript import (
    Billed,
    Link,
    Malformed,
    parse_line,
    rfc3339_us,
    token_usage,
)
from kei.domain.events import TokenUsage
from kei.limits import LIMITS

T0 = 1772359200000000  # 2026-03-01T10:00:00Z


def line(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_a_billed_message_carries_every_usage_field() -> None:
    got = parse_line(line(assistant("s", "m", "r", "2026-03-01T10:00:00.250Z", tokens_in=3,
                                    tokens_out=4, cache_write=70, cache_read=9, cache_1h=20)),
                     1, "file-session")  # fmt: skip
    assert isinstance(got, Billed)
    assert (got.key, got.session, got.at_us, got.model) == ("m:r", "s", T0 + 250_000,
                                                            "claude-sonnet-4-6")  # fmt: skip
    u = got.usage
    assert (u.counts[4], u.counts[5]) == (50, 20)
    assert u.service_tier == "standard"
    # kei's convention (OpenTelemetry GenAI): input counts the cache reads and writes
    assert token_usage(u) == TokenUsage(
        input_tokens=3 + 70 + 9,
        output_tokens=4,
        cache_read_tokens=9,
        cache_write_tokens=70,
        cache_write_1h_tokens=20,
    )


def test_keys_fall_back_to_the_uuid_and_need_some_id() -> None:
    no_request = assistant("s", "m", None, "2026-03-01T10:00:00Z", uuid="u-1")
    got = parse_line(line(no_request), 1, "s")
    assert isinstance(got, Billed) and got.key == "uuid:u-1"
    del no_request["uuid"]
    assert parse_line(line(no_request), 4, "s") == Malformed(
        4, "billed message without message.id, requestId or uuid"
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda o: o["message"]["usage"].update(output_tokens=-1), "negative"),
        (lambda o: o["message"]["usage"].update(output_tokens=10**13), "implausibly"),
        (lambda o: o["message"]["usage"].update(output_tokens=1.5), "unexpected value"),
        (lambda o: o.update(timestamp="yesterday"), "without a valid timestamp"),
        (lambda o: o.pop("timestamp"), "without a valid timestamp"),
        (lambda o: o["message"].update(model=""), "without a model"),
        (lambda o: o["message"].update(usage="lots"), "unexpected value"),
    ],
)
def test_hostile_billed_lines_are_malformed(change: object, why: str) -> None:
    obj = assistant("s", "m", "r", "2026-03-01T10:00:00Z")
    change(obj)  # type: ignore[operator]
    got = parse_line(line(obj), 7, "s")
    assert isinstance(got, Malformed) and got.line_no == 7 and why in got.reason


@pytest.mark.parametrize(
    "raw", [b"", b"\n", line(user("s", "hi", "2026-03-01T10:00:00Z")),
            line({"type": "summary", "message": "not a dict"}),
            line(assistant("s", "m", "r", "2026-03-01T10:00:00Z", model="<synthetic>")),
            line(assistant("s", "m", "r", "2026-03-01T10:00:00Z", tokens_in=0, tokens_out=0))],
)  # fmt: skip
def test_lines_that_bill_nothing(raw: bytes) -> None:
    assert parse_line(raw, 1, "s") is None


@pytest.mark.parametrize("raw", [b"{oops", b"[1]", b"17", b'"text"', b"\xff\xfe{"])
def test_lines_that_are_not_json_objects(raw: bytes) -> None:
    assert parse_line(raw, 3, "s") == Malformed(3, "not a JSON object")


def test_a_task_result_links_the_subagent_to_its_tool_use_id() -> None:
    result = task_result("s", "toolu_9", "ab12", "2026-03-01T10:00:00Z")
    assert parse_line(line(result), 1, "s") == Link("ab12", "toolu_9")
    result.pop("toolUseResult")  # older versions: only the text says it
    assert parse_line(line(result), 1, "s") == Link("ab12", "toolu_9")
    assert parse_line(line(result), 1, "s", agent="ab12") is None  # a sub-agent's own file


def test_a_subagent_file_names_its_agent() -> None:
    got = parse_line(line(assistant("s", "m", "r", "2026-03-01T10:00:00Z", sidechain=True)),
                     1, "s", agent="from-file")  # fmt: skip
    assert isinstance(got, Billed) and (got.agent, got.sidechain) == ("from-file", True)
    assert claude_files.subagent_of(Path("p/s/subagents/agent-ab12.jsonl")) == "ab12"
    assert claude_files.subagent_of(Path("p/s.jsonl")) is None


@pytest.mark.parametrize(
    ("text", "us"),
    [("2026-03-01T10:00:00Z", T0), ("2026-03-01T10:00:00.5Z", T0 + 500_000),
     ("2026-03-01T11:00:00+01:00", T0), ("2026-03-01T10:00:60Z", T0 + 59_000_000),
     ("2026-02-30T10:00:00Z", None), ("2026-03-01T24:00:00Z", None), ("soon", None)],
)  # fmt: skip
def test_timestamps(text: str, us: int | None) -> None:
    assert rfc3339_us(text) == us


def test_the_reader_skips_overlong_lines_and_oversized_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "s.jsonl", ["{}", "x" * 300, "{}"])
    small = msgspec.structs.replace(LIMITS, max_line_bytes=100)
    monkeypatch.setattr(claude_files, "LIMITS", small)
    assert [(n, raw) for n, raw in claude_files.lines(path)] == [
        (1, b"{}\n"), (2, None), (3, b"{}\n"),
    ]  # fmt: skip
    monkeypatch.setattr(
        claude_files, "LIMITS", msgspec.structs.replace(small, max_transcript_bytes=10)
    )
    with pytest.raises(Exception, match="larger than 10 bytes"):
        list(claude_files.lines(path))


def test_discovery_groups_sessions_and_reads_the_oldest_first(tmp_path: Path) -> None:
    write(tmp_path / "p" / "new.jsonl", [assistant("new", "m", "r", "2026-03-02T00:00:00Z")])
    write(tmp_path / "p" / "old.jsonl", [assistant("old", "m", "r", "2026-03-01T00:00:00Z")])
    write(tmp_path / "p" / "old" / "subagents" / "agent-a.jsonl", ["{}"])
    (tmp_path / "loop").symlink_to(tmp_path)  # never followed
    skipped: list[tuple[str, str]] = []
    found = claude_files.discover([tmp_path, tmp_path / "gone"], skipped)
    assert [(g.session, [f.name for f in g.files]) for g in found] == [
        ("old", ["old.jsonl", "agent-a.jsonl"]), ("new", ["new.jsonl"]),
    ]  # fmt: skip
    assert skipped == [(str(tmp_path / "gone"), "no such file or folder")]


def test_blocks_start_on_the_hour_and_split_after_five_hours() -> None:
    at = [T0 + 25 * 60_000_000, T0 + 4 * HOUR_US, T0 + 5 * HOUR_US + 1, T0 + 11 * HOUR_US]
    found = blocks([Spend(at_us=t, micro_cents=100, tokens=10) for t in at], T0 + 12 * HOUR_US)
    assert [(b.start_us, b.total.events, b.total.micro_cents) for b in found] == [
        (T0, 2, 200), (T0 + 5 * HOUR_US, 1, 100), (T0 + 11 * HOUR_US, 1, 100),
    ]  # fmt: skip
    assert [b.active for b in found] == [False, False, True]
    assert found[0].end_us == T0 + BLOCK_US


def test_an_active_blocks_burn_rate_and_projection() -> None:
    spends = [Spend(at_us=T0, micro_cents=1_000_000, tokens=600),
              Spend(at_us=T0 + HOUR_US, micro_cents=2_000_000, tokens=600)]  # fmt: skip
    (block,) = blocks(spends, now_us=T0 + 2 * HOUR_US)
    assert block.active and block.burn is not None
    assert block.burn.hourly_micro_cents == 3_000_000  # $0.03 over the hour between calls
    assert block.burn.tokens_per_minute == 20
    assert block.burn.remaining_us == 3 * HOUR_US
    assert block.burn.projected_micro_cents == 3_000_000 + 9_000_000
    (idle,) = blocks(spends, now_us=T0 + 6 * HOUR_US + 1)
    assert not idle.active and idle.burn is None
