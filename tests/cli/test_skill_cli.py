"""``kei skill record|report|last-used`` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei, run_sql


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    environment = cli_env(tmp_path / "home", store_url)
    done = kei(["init"], environment)
    assert done.returncode == 0, done.stderr
    return environment


def count_events(url: str) -> int:
    return int(run_sql(url, "SELECT COUNT(*) FROM kei_chain")[0][0])


def test_record_then_report_in_both_formats(env: dict[str, str]) -> None:
    for i in range(10):
        done = kei(
            ["skill", "record", "lint", "--success", "--duration-ms", str(100 + i * 10)], env
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith("kei: recorded success of skill 'lint' at position ")
    done = kei(
        [
            "skill",
            "record",
            "deploy",
            "--failure",
            "--agent",
            "a-1",
            "--trajectory",
            "t-9",
            "--json",
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["ok"] is True and line["skill"] == "deploy" and line["recorded_at"].endswith("Z")

    md = kei(["skill", "report"], env)
    assert md.returncode == 0, md.stderr
    lines = md.stdout.splitlines()
    assert lines[0] == "| skill | total | success% | p50_ms | p95_ms | last_ts | recommendation |"
    assert lines[2].startswith("| deploy | 1 | 0.0% | 0 | 0 | ")
    assert lines[2].endswith(" | insufficient |")
    assert lines[3].startswith("| lint | 10 | 100.0% | 140 | 190 | ")
    assert lines[3].endswith(" | validated |")

    js = kei(["skill", "report", "--format", "json"], env)
    assert js.returncode == 0, js.stderr
    rows = json.loads(js.stdout)
    assert [(r["skill_name"], r["recommendation"]) for r in rows] == [
        ("deploy", "insufficient"),
        ("lint", "validated"),
    ]
    assert json.loads(kei(["skill", "report", "--json"], env).stdout) == rows


def test_empty_report_and_since(env: dict[str, str]) -> None:
    assert kei(["skill", "report"], env).stdout == "*(no skill_invocations in window)*\n"
    assert json.loads(kei(["skill", "report", "--format", "json"], env).stdout) == []
    assert kei(["skill", "record", "x", "--success"], env).returncode == 0
    assert len(json.loads(kei(["skill", "report", "--json", "--since", "1h"], env).stdout)) == 1
    future = kei(["skill", "report", "--json", "--since", "2999-01-01"], env)
    assert json.loads(future.stdout) == []


def test_last_used(env: dict[str, str]) -> None:
    never = kei(["skill", "last-used", "ghost", "--json"], env)
    assert json.loads(never.stdout) == {"skill": "ghost", "last_used_at": None}
    assert kei(["skill", "last-used", "ghost"], env).stdout == "never\n"
    assert kei(["skill", "record", "x", "--failure"], env).returncode == 0
    shown = kei(["skill", "last-used", "x"], env).stdout.strip()
    assert shown.endswith("Z") and shown.startswith("20")


REFUSED = [
    ("success-value", ["skill", "record", "x", "--success", "1"], "unexpected extra argument"),
    (
        "negative-duration",
        ["skill", "record", "x", "--success", "--duration-ms", "-5"],
        "duration_ms must be >= 0",
    ),
    ("empty-name", ["skill", "record", "", "--success"], "skill_name must not be empty"),
    ("missing-success", ["skill", "record", "x"], "Missing option '--success'"),
    (
        "bad-since",
        ["skill", "report", "--since", "yesterday"],
        "is not a date, a time or a duration",
    ),
    (
        "bad-format",
        ["skill", "report", "--format", "xml"],
        "Invalid value for '--format': 'xml' is not one of",
    ),
    ("json-vs-markdown", ["skill", "report", "--json", "--format", "markdown"], "--json conflicts"),
]


@pytest.mark.parametrize(("args", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_bad_input_is_one_line_exit_2_and_appends_nothing(
    env: dict[str, str], store_url: str, args: list[str], message: str
) -> None:
    before = count_events(store_url)
    done = kei(args, env)
    assert done.returncode == 2
    assert done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith("kei: error: ") and message in first
    assert "Traceback" not in done.stderr
    assert count_events(store_url) == before


def test_projection_status_lists_skills(env: dict[str, str]) -> None:
    assert kei(["skill", "record", "x", "--success"], env).returncode == 0
    status = kei(["projections", "status", "--json"], env)
    names = [json.loads(line)["name"] for line in status.stdout.splitlines()]
    assert "skills" in names
