"""``kei import claude-code``: one cost event per billed message, deduplicated as ccusage
does, linked to the session root or the sub-agent, re-runs appending nothing; and the
reports over them (day, month, session, project, block, canonical model), on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from claude_transcripts import CWD, assistant, write
from conftest import S1, S2
from kei.adapters.files.catalog import load_catalog
from kei.app import cost_reads
from kei.app.cost_writes import price_request
from kei.app.hooks.calls import ClaudeCall, fork_request, root_request
from kei.app.hooks.recording import ensure_forked
from kei.app.importers.claude_code import import_claude_code, sources
from kei.app.ledger.ledger import Ledger
from kei.domain.claude_code.transcript import parse_line, token_usage
from kei.domain.events import CostRecorded
from kei.errors import InputError

SONNET_M2 = 20 * 300 + 200 * 1500  # µ¢: $3 and $15 per million tokens
HAIKU_M3 = 1000 * 100 + 10 * 500  # $1 and $5 per million tokens
HAIKU_M4 = 100 * 100 + 1000 * 500
T_1630 = 1772380800000000 + 30 * 60_000_000  # 2026-03-01T16:30Z


def m1_price() -> int:
    """msg_1 carries cache tokens: its amount is whatever the cost writer prices them at."""
    line = json.dumps(assistant(S1, "msg_1", "req_1", "2026-03-01T10:00:00.000Z",
                                tokens_in=10, tokens_out=100, cache_write=2000,
                                cache_read=50000, cache_1h=500)).encode()  # fmt: skip
    billed = parse_line(line, 1, S1)
    assert billed is not None and not isinstance(billed, str)
    usage = token_usage(billed.usage)  # type: ignore[union-attr]
    return price_request(
        load_catalog(None), "anthropic", "claude-sonnet-4-6", usage, None
    ).micro_cents


def costs(ledger: Ledger) -> dict[str, CostRecorded]:
    found = {}
    for record in ledger.store.read_types(["cost.recorded"]):
        from kei.domain.log.recorded import RecordedEvent

        event = RecordedEvent.from_record(record)
        p = event.payload()
        assert isinstance(p, CostRecorded) and p.origin is not None and p.origin.ref
        found[p.origin.ref] = p
    return found


def test_one_event_per_billed_message_linked_to_session_and_subagent(
    ledger: Ledger, projects: Path
) -> None:
    report = import_claude_code(ledger, [projects], load_catalog(None))
    assert (report.files, report.sessions, report.billed) == (3, 2, 4)
    assert report.repeated == 3  # the streamed copy, the sub-agent's copy, the resumed copy
    assert report.events_appended == 4 and report.agents_forked == 3
    assert report.malformed == 3
    assert [(b.line, b.why.split(":")[0]) for b in report.bad_lines] == [
        (6, "not a JSON object"), (7, "unexpected value"), (9, "not a JSON object"),
    ]  # fmt: skip
    assert all(b.file.endswith(f"{S1}.jsonl") for b in report.bad_lines)
    found = costs(ledger)
    assert set(found) == {"msg_1:req_1", "msg_2:req_2", "msg_3:req_3", "msg_4:req_4"}
    agents = {ref: (c.agent_id, c.session, c.cwd) for ref, c in found.items()}
    assert agents == {
        "msg_1:req_1": (f"claude-session-{S1}", S1, CWD),
        "msg_2:req_2": (f"claude-session-{S1}", S1, CWD),  # sidechain, no agent named
        "msg_3:req_3": ("toolu_A", S1, CWD),  # the sub-agent, by the Task's tool_use_id
        "msg_4:req_4": (f"claude-session-{S2}", S2, CWD),
    }
    m1 = found["msg_1:req_1"]
    assert (m1.usage.cache_read_tokens, m1.usage.cache_write_tokens) == (50000, 2000)
    assert (m1.usage.input_tokens, m1.usage.cache_write_1h_tokens) == (10 + 2000 + 50000, 500)
    assert m1.origin is not None and m1.origin.source == "claude-code"
    assert m1.origin.occurred_at_us == 1772359200000000
    assert m1.micro_cents == m1_price() and m1.price_entry_id == "claude-sonnet-4-6"
    # Anthropic's Sonnet rates per million: input $3, 5-minute write $3.75, 1-hour write
    # $6, cache read $0.30, output $15 (300 µ¢ a token is $3 per million)
    assert m1_price() == 10 * 300 + 1500 * 375 + 500 * 600 + 50000 * 30 + 100 * 1500
    amounts = {r: c.micro_cents for r, c in found.items() if r != "msg_1:req_1"}
    assert amounts == {"msg_2:req_2": SONNET_M2, "msg_3:req_3": HAIKU_M3, "msg_4:req_4": HAIKU_M4}
    assert report.micro_cents == sum(c.micro_cents for c in found.values())
    sub = ledger.read_stream("agent/toolu_A")[0].payload()
    assert getattr(sub, "parent_agent_id", None) == f"claude-session-{S1}"


def test_a_rerun_and_a_grown_transcript_append_only_what_is_new(
    ledger: Ledger, projects: Path
) -> None:
    catalog = load_catalog(None)
    import_claude_code(ledger, [projects], catalog)
    head = ledger.store.max_position()
    again = import_claude_code(ledger, [projects], catalog)
    assert (again.events_appended, again.billed, again.already) == (0, 0, 4)
    assert ledger.store.max_position() == head
    main = projects / "-home-dev-proj" / f"{S2}.jsonl"
    with main.open("a") as f:  # the session goes on
        f.write(json.dumps(assistant(S2, "msg_5", "req_5", "2026-03-01T16:10:00.000Z")) + "\n")
    grown = import_claude_code(ledger, [main], catalog)  # one file named directly
    assert (grown.events_appended, grown.already, grown.agents_forked) == (1, 2, 0)


def test_a_dry_run_appends_nothing(ledger: Ledger, projects: Path) -> None:
    head = ledger.store.max_position()
    report = import_claude_code(ledger, [projects], load_catalog(None), dry_run=True)
    assert (report.dry_run, report.events_appended, report.agents_forked) == (True, 4, 0)
    assert ledger.store.max_position() == head


def test_agents_the_hook_forked_are_used_and_unknown_models_recorded_unpriced(
    ledger: Ledger, projects: Path
) -> None:
    call = ClaudeCall(event="PreToolUse", session_id=S1, tool_name="Task", tool_use_id="toolu_A",
                      tool_input={"subagent_type": "Explore", "prompt": "look"})  # fmt: skip
    ensure_forked(ledger, root_request(call, "main"))
    ensure_forked(ledger, fork_request(call, "main", 1772360000))
    write(projects / "other" / "s3.jsonl", [
        assistant("s3", "msg_9", "req_9", "2026-03-02T00:00:00Z", model="claude-unknown-9"),
    ])  # fmt: skip
    report = import_claude_code(ledger, [projects], load_catalog(None))
    assert report.agents_forked == 2  # the roots of S2 and s3: the hook made S1 and toolu_A
    assert report.unpriced == {"claude-unknown-9": 1}
    assert report.events_appended == 5
    unknown = costs(ledger)["msg_9:req_9"]
    assert (unknown.unpriced, unknown.micro_cents, unknown.price_entry_id) == (True, 0, None)
    fork = ledger.read_stream("agent/toolu_A")[0].payload()
    assert getattr(fork, "dna", "").startswith("Explore::")  # the hook's fork, untouched


def _report(ledger: Ledger, by: str, **kw: Any) -> dict[str, tuple[int, int]]:
    cost_reads.caught_up(ledger)
    found = cost_reads.report(ledger.store, by, load_catalog(None), cost_reads.Window(**kw))
    return {r.key: (r.micro_cents, r.events) for r in found.rows}


def test_reports_by_day_month_session_project_model_and_block(
    ledger: Ledger, projects: Path
) -> None:
    import_claude_code(ledger, [projects], load_catalog(None))
    m1 = m1_price()
    s1 = m1 + SONNET_M2 + HAIKU_M3
    total = s1 + HAIKU_M4
    assert _report(ledger, "day") == {"2026-03-01": (total, 4)}
    assert _report(ledger, "month") == {"2026-03": (total, 4)}
    assert _report(ledger, "session") == {S1: (s1, 3), S2: (HAIKU_M4, 1)}
    assert _report(ledger, "project") == {CWD: (total, 4)}
    # an alias and its model are one row
    assert _report(ledger, "model") == {
        "claude-sonnet-4-6": (m1 + SONNET_M2, 2), "claude-haiku-4-5": (HAIKU_M3 + HAIKU_M4, 2),
    }  # fmt: skip
    blocks = cost_reads.report(
        ledger.store, "block", load_catalog(None), cost_reads.Window(now_us=T_1630)
    )
    assert [(r.key, r.micro_cents, r.events) for r in blocks.rows] == [
        ("2026-03-01T10:00Z", s1, 3), ("2026-03-01T16:00Z", HAIKU_M4, 1),
    ]  # fmt: skip
    assert [b.active for b in blocks.blocks] == [False, True]
    assert blocks.blocks[1].burn is None  # one request spans no time: no rate
    until = _report(ledger, "session", until_us=1772359200000000 + 25 * 60_000_000)
    assert until == {S1: (m1 + HAIKU_M3, 2)}  # 10:00 and 10:20, not 10:30 or 16:00
    since = _report(ledger, "session", since_us=1772380800000000)
    assert since == {S2: (HAIKU_M4, 1)}


def test_default_sources(tmp_path: Path) -> None:
    home, config = tmp_path / "home", tmp_path / "cfg"
    with pytest.raises(InputError, match="no Claude Code transcripts"):
        sources([], home, None)
    (home / ".claude" / "projects").mkdir(parents=True)
    (config / "projects").mkdir(parents=True)
    assert sources([], home, str(config)) == [
        (home / ".claude" / "projects").resolve(), (config / "projects").resolve(),
    ]  # fmt: skip
    (tmp_path / "x").mkdir()
    assert sources([tmp_path / "x"], home, None) == [tmp_path / "x"]
    with pytest.raises(InputError, match="no such file or folder"):  # a typo is no empty import
        sources([tmp_path / "x", tmp_path / "typo"], home, None)


def test_the_cli_imports_and_reports(
    store_url: str, tmp_path: Path, projects: Path, in_kei: Callable[..., Any]
) -> None:
    kei = in_kei(store_url, tmp_path / "khome", HOME=str(projects.parent))
    (projects.parent / ".claude").mkdir()
    projects.rename(projects.parent / ".claude" / "projects")  # the default place
    out = json.loads(kei("import", "claude-code", "--dry-run", "--json").stdout)
    assert (out["events_appended"], out["dry_run"], out["malformed"]) == (4, True, 3)
    text = kei("import", "claude-code").stdout
    assert "cost events appended: 4" in text and "malformed lines: 3" in text
    assert "cost events appended: 0" in kei("import", "claude-code").stdout
    day = json.loads(kei("cost", "report", "--by", "day", "--json").stdout)
    assert [r["day"] for r in day["rows"]] == ["2026-03-01"] and day["rows"][0]["events"] == 4
    assert day["total_usd"] and day["until"] is None
    block = json.loads(kei("cost", "report", "--by", "block", "--json").stdout)
    assert [r["block"] for r in block["rows"]] == ["2026-03-01T10:00Z", "2026-03-01T16:00Z"]
    assert block["rows"][0]["started_at"] == "2026-03-01T10:00:00.000000Z"
    assert block["rows"][0]["active"] is False  # the clock is long past March 2026's blocks
    bad = kei("cost", "report", "--until", "someday", code=2).stderr
    assert bad.startswith("kei: error: --until 'someday' is not a date")  # names its own flag
    assert kei("import", "claude-code", str(tmp_path / "typo"), code=2).stderr.startswith(
        f"kei: error: {tmp_path / 'typo'}: no such file or folder"
    )


def test_an_amended_import_keeps_its_session_and_project(
    store_url: str, tmp_path: Path, projects: Path, in_kei: Callable[..., Any]
) -> None:
    kei = in_kei(store_url, tmp_path / "khome")
    kei("import", "claude-code", str(projects))
    with Ledger.open(store_url) as ledger:
        m4 = next(e for e in ledger.read_stream(f"agent/claude-session-{S2}")
              if e.type == "cost.recorded")  # fmt: skip
    kei("cost", "amend", f"{m4.stream}:{m4.version}", "--cents", "1")
    rows = json.loads(kei("cost", "report", "--by", "session", "--json").stdout)["rows"]
    assert {r["session"]: r["micro_cents"] for r in rows}[S2] == 1_000_000
    rows = json.loads(kei("cost", "report", "--by", "project", "--json").stdout)["rows"]
    assert [r["project"] for r in rows] == [CWD]


def test_reports_count_unpriced_calls_apart(
    store_url: str, tmp_path: Path, in_kei: Callable[..., Any]
) -> None:
    write(tmp_path / "p" / "s9.jsonl", [
        assistant("s9", "msg_9", "req_9", "2026-03-02T00:00:00Z", model="claude-unknown-9"),
        assistant("s9", "msg_8", "req_8", "2026-03-02T00:01:00Z", tokens_in=20, tokens_out=200),
    ])  # fmt: skip
    kei = in_kei(store_url, tmp_path / "khome")
    kei("import", "claude-code", str(tmp_path / "p"))
    got = json.loads(kei("cost", "report", "--by", "session", "--json").stdout)
    (row,) = got["rows"]
    assert (row["events"], row["micro_cents"], row["unpriced_events"]) == (2, SONNET_M2, 1)
    assert (row["given_events"], got["unpriced"]) == (0, 1)  # unpriced is not "given"
    text = kei("cost", "report", "--by", "model").stdout
    assert "claude-unknown-9\t1\t$0.00\t0\tUNPRICED (1 of 1)" in text
    assert "TOTAL\t2\t" in text and "UNPRICED (1 of 2)" in text
