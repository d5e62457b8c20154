"""Stored text never drives the terminal: commands that print ids, keys, tags, names or
values neutralise control and escape sequences (as ``events tail`` does).

Writers refuse such values now (``kei.domain.events.limits``); the ledger here holds them
anyway, signed behind the validation as an older release could.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env
from kei.adapters.files.keyfile import load_key
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import (
    AgentCompleted,
    AgentForked,
    CostRecorded,
    MemoryWritten,
    SkillInvoked,
)
from kei.domain.events.routing import RouteOutcome
from kei.domain.events.traces import TraceRecorded

EVIL = "\x1b[31mRED\x1b[0m\nFORGED\r\x9b2J"
Kei = Callable[..., Result]


@pytest.fixture
def kei(sqlite_url: str, tmp_path: Path) -> Kei:
    home = tmp_path / "home"
    env = cli_env(home, sqlite_url)

    def run(*args: str) -> Result:
        from kei.adapters.cli.app import app

        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code in (0, 1), (args, result.stdout, result.stderr)
        return result

    run("init")
    with Ledger.open(sqlite_url, key=load_key(home / "keys" / "default.key")) as ledger:
        ledger._append([
            NewEvent("ev", AgentForked(agent_id="ev" + EVIL, branch="b" + EVIL, creator=EVIL)),
            NewEvent("ok", AgentForked(agent_id="ok", branch="main", parent_agent_id="ev" + EVIL)),
            NewEvent("ok", AgentCompleted(agent_id="ok", summary="done" + EVIL)),
            NewEvent("ok", CostRecorded(agent_id="ok", provider="p" + EVIL, model="m" + EVIL,
                                        micro_cents=5)),
            NewEvent("memory/ns/k", MemoryWritten(namespace="ns", key="k" + EVIL, value="v" + EVIL,
                                                  kind="note" + EVIL, tags=("t" + EVIL,))),
            NewEvent("skill/s", SkillInvoked(skill_name="s" + EVIL, success=True)),
            NewEvent("route/x", RouteOutcome(decision_id="x", task_class="tc" + EVIL,
                                             model="m" + EVIL, outcome="functional")),
            NewEvent("trace/s", TraceRecorded(session="s" + EVIL, content_hash="h", line_no=1,
                                              block=0, ts_us=1, kind="tool" + EVIL,
                                              event_class="c" + EVIL, text="t" + EVIL,
                                              file_path="/f" + EVIL)),
        ])  # fmt: skip
    return run


COMMANDS = [
    ("agent", "list"),
    ("agent", "tree", "ok"),
    ("agent", "tree", "ev" + EVIL),
    ("agent", "show", "ok"),
    ("memory", "query", "--namespace", "ns"),
    ("memory", "search", "v"),
    ("memory", "get", "--namespace", "ns", "k" + EVIL),
    ("keys", "list"),
    ("skill", "report"),
    ("cost", "report", "--by", "model"),
    ("posterior", "show"),
    ("retro", "show", "s" + EVIL),
    ("retro", "patterns", "--min-count", "1"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_no_raw_escape_reaches_the_terminal(kei: Kei, args: tuple[str, ...]) -> None:
    result = kei(*args)
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x9b" not in stream and "\r" not in stream, stream
        if args[:2] != ("memory", "get"):  # a value is multi-line text; ids are not
            assert not any(line.startswith("FORGED") for line in stream.splitlines()), stream


def test_json_keeps_the_exact_value(kei: Kei) -> None:
    import json

    out = kei("memory", "get", "--namespace", "ns", "k" + EVIL, "--json").stdout
    assert json.loads(out)["value"] == "v" + EVIL


def test_rich_forms_escape_too() -> None:
    import io

    from rich.console import Console

    from kei.adapters.cli import render

    row = {"id": "a" + EVIL, "status": "running", "branch": "b" + EVIL, "forked_us": 0,
           "parent_agent_id": EVIL, "spec_sha": None}  # fmt: skip
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=200).print(render.agent_table([row]))
    assert "\x1b[31mRED" not in buffer.getvalue() and "\x9b" not in buffer.getvalue()
