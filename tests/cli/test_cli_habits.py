"""The CLI's habits, checked over the whole command tree: ``--json`` wherever a command
answers, choices that are choices, ``--since`` a time and ``--after`` a position, one
form for times and money in every JSON answer (``json_form.py``), flags that are flags."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import typer.main
from typer.testing import Result

from cli_helpers import cli_env, in_process
from cli_helpers import kei as run_cli
from kei.adapters.cli import options
from kei.adapters.cli.app import app
from kei.app.cost_reads import GROUPS
from kei.app.json_form import MOMENTS, json_form, rfc3339, usd
from kei.domain.catalog.entries import STATUSES
from kei.domain.events import OUTCOMES
from kei.domain.events.budgets import PERIODS
from kei.domain.leaks.rules import CATEGORIES, SCOPES, SEVERITIES
from kei.domain.routing.select import POLICIES
from kei.domain.tokens.grant import SCOPES as TOKEN_SCOPES

MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
# Commands whose answer is the data itself (a file, a key, a filtered stream), not a
# report about it; the story `kei demo` tells; the hook and the MCP server.
NO_JSON = {
    ("checkpoint",), ("demo",), ("keys", "export"), ("events", "export"),
    ("leaks", "substitute"), ("witness", "init"), ("witness", "vkey"), ("witness", "cosign"),
    ("hook", "claude-code"),  # a hook prints nothing, by contract
    ("mcp", "serve"),  # stdout speaks MCP
    ("notify", "receive"),  # an HTTP server: it says where it listens on stderr
    ("serve",),  # the HTTP API: its answers are HTTP
}  # fmt: skip
CHOICES = {"--by", "--outcome", "--policy", "--format", "--status", "--scope", "--severity",
           "--fail-on", "--category"}  # fmt: skip
DURATIONS = {"duration_us", "total_us", "load_us", "prompt_us", "generation_us", "duration_ms"}


def leaves(
    command: Any = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    command = command or typer.main.get_command(app)
    subs = getattr(command, "commands", None)
    if not subs:
        yield path, command
        return
    for name, sub in subs.items():
        yield from leaves(sub, (*path, name))


def test_every_command_that_answers_takes_json() -> None:
    missing = [p for p, c in leaves() if not any("--json" in o.opts for o in c.params)]
    assert set(map(tuple, missing)) == NO_JSON


def test_choices_are_choices_in_help() -> None:
    for path, command in leaves():
        for param in command.params:
            if set(param.opts) & CHOICES:
                assert param.type.name == "choice", (path, param.opts)


@pytest.mark.parametrize(
    ("literal", "domain"),
    [
        (options.OutcomeName, OUTCOMES),
        (options.CostGroup, GROUPS),
        (options.RoutePolicy, POLICIES),
        (options.BudgetPeriod, PERIODS),
        (options.LeakScope, SCOPES),
        (options.LeakCategory, CATEGORIES),
        (options.ModelStatus, STATUSES),
        (options.TokenScope, TOKEN_SCOPES),
    ],
)
def test_choices_mirror_what_the_domain_checks(literal: Any, domain: tuple[str, ...]) -> None:
    assert get_args(literal) == tuple(domain)


def test_severity_choices_are_the_findings_a_rule_can_give() -> None:
    assert set(get_args(options.LeakSeverity)) == set(SEVERITIES) - {"exclude"}


def test_every_value_has_a_metavar() -> None:
    """FILE, DIR, URL, N, ID, WHEN...: what a value is, said the same way everywhere (a
    choice shows its values instead)."""
    for path, command in leaves():
        for param in command.params:
            takes_value = not getattr(param, "is_flag", False) and param.type.name != "choice"
            if takes_value:
                assert param.metavar and param.metavar == param.metavar.upper(), (path, param)


def test_since_is_a_time_and_after_a_position() -> None:
    for path, command in leaves():
        for param in command.params:
            if "--since" in param.opts:
                assert param.type.name == "str", path  # parsed as a time by options.time_us
            if "--after" in param.opts:
                assert param.type.name == "int range", path


def test_json_form_of_moments_and_money() -> None:
    shown = json_form(
        {
            "forked_us": 1_796_651_095_476_214,
            "finished_us": None,
            "total_micro_cents": 425_499_999,
            "rows": [{"micro_cents": -150_000_000, "duration_us": 5}],
            "pricing": {"input_per_mtok_micro": 300_000_000},
            "payload": {"occurred_at_us": 1},
        }
    )
    assert shown == {
        "forked_at": "2026-12-07T13:44:55.476214Z",
        "finished_at": None,
        "total_micro_cents": 425_499_999,
        "total_usd": "4.25499999",
        "rows": [{"micro_cents": -150_000_000, "usd": "-1.50", "duration_us": 5}],
        "pricing": {"input_per_mtok_micro_cents": 300_000_000, "input_per_mtok_usd": "3.00"},
        "payload": {"occurred_at_us": 1},  # signed data, shown as stored
    }
    assert rfc3339(0) == "1970-01-01T00:00:00.000000Z" and rfc3339(10**20) is None
    assert [usd(m) for m in (0, 1, 100_000_000, 21_780_000)] == ["0.00", "0.00000001", "1.00",
                                                                  "0.2178"]  # fmt: skip


@pytest.fixture
def kei(store_url: str, tmp_path: Path) -> Any:
    run = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    return run


def answers(result: Result) -> list[Any]:
    """NDJSON lines, or the one JSON array ``skill report --json`` prints."""
    if result.stdout.startswith("["):
        return list(json.loads(result.stdout))
    return [json.loads(line) for line in result.stdout.splitlines()]


def no_raw_times(value: Any) -> None:
    """No ``*_us`` moment and no rounded cents anywhere in an answer."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "payload":
                continue
            assert key not in MOMENTS and key not in {"display_cents", "total_cost_cents"}, key
            assert not key.endswith("_us") or key in DURATIONS, key
            if key.endswith("_at") and isinstance(item, str):
                assert MOMENT.fullmatch(item), (key, item)
            no_raw_times(item)
    elif isinstance(value, list):
        for item in value:
            no_raw_times(item)


def test_agent_writes_answer_in_json_and_every_answer_keeps_the_forms(kei: Any) -> None:
    forked = answers(kei("agent", "fork", "a1", "main", "--json"))
    assert forked == [{"ok": True, "agent_id": "a1", "command": "fork", "appended": 1,
                       "message": "forked a1 -> main"}]  # fmt: skip
    kei("agent", "fork", "a2", "feat", "--parent", "a1", "--json")
    kei("cost", "record", "a2", "--provider", "p", "--model", "m", "--cents", "7", "--json")
    assert answers(kei("agent", "fail", "a2", "--reason", "r", "--json"))[0]["appended"] == 1
    again = answers(kei("agent", "fail", "a2", "--reason", "r", "--json"))[0]
    assert again["appended"] == 0 and again["ok"] is True
    kei("agent", "done", "a1", "--summary", "s", "--json")
    kei("agent", "outcome", "a1", "--outcome", "functional", "--json")
    kei("skill", "record", "lint", "--success", "--json")
    kei("memory", "write", "k", "v", "--json")
    tree = answers(kei("agent", "tree", "a1", "--json"))
    assert [(n["id"], n["micro_cents"], n["usd"]) for n in tree] == [
        ("a1", 0, "0.00"),
        ("a2", 7_000_000, "0.07"),
    ]
    reads = [
        ("agent", "list"), ("agent", "show", "a1"), ("agent", "tree", "a1"), ("cost", "report"),
        ("skill", "report"), ("skill", "last-used", "lint"), ("memory", "query"),
        ("events", "tail"), ("keys", "list"), ("verify-chain",),
    ]  # fmt: skip
    for args in reads:
        for answer in answers(kei(*args, "--json")):
            no_raw_times(answer)
    event = answers(kei("events", "tail", "-n", "1", "--json"))[0]
    assert MOMENT.fullmatch(event["time"])


def test_a_flag_is_a_flag(kei: Any) -> None:
    kei("skill", "record", "s", "--failure")
    assert "failure" in kei("skill", "record", "s", "--failure").stderr
    assert kei("skill", "record", "s", "--success", "1", code=2).exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cost", "report", "--by", "week"], "Invalid value for '--by': 'week' is not one of"),
        (["agent", "list", "--status", "asleep"], "Invalid value for '--status'"),
        (["route", "select", "--dna", "d", "--policy", "greedy"], "Invalid value for '--policy'"),
        (["skill", "record", "s", "--success", "1"], "unexpected extra argument(s) (1)"),
        (["events", "export", "--since", "3"], "No such option: --since"),
        (["replay"], "missing BUNDLE"),
        (["replay", "a.tar.zst", "--from", "b.tar.zst"], "give the bundle once"),
    ],
    ids=["by", "status", "policy", "success-value", "since-position", "no-bundle", "two-bundles"],
)
def test_refused_forms_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli(args, cli_env(tmp_path / "home"))
    assert done.returncode == 2, done.stderr
    first, *rest = done.stderr.splitlines()
    assert first.startswith("kei: error: ") and message in first, done.stderr
    assert all(line.startswith("kei: hint: ") for line in rest), done.stderr
    assert done.stdout == ""
