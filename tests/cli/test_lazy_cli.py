"""The command table loads lazily: a write imports its own command module and no read
model (SQLAlchemy), no rich, no other command; ``--help`` and ``--version`` import no
command at all; global options work after the command too; shell completion answers.
Real subprocesses on a real SQLite ledger; nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from cli_helpers import cli_env
from kei import __version__
from kei.adapters.cli.app import COMMANDS, app
from kei.adapters.cli.lazy import GLOBALS, Group, Lazy, LazyGroup

DNA = "coder::rust-test::3F2A9C01::7B1E44D0-9a0c11fe"
# Runs kei's console entry point, then prints the heavy or foreign modules it loaded.
PROBE = """
import json, sys
sys.argv = ["kei", *sys.argv[1:]]
from kei.adapters.cli.entry import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "rich", "typer")
                or m.startswith("kei.adapters.cli.commands."))
sys.stderr.write("\\nLOADED " + json.dumps([code, loaded]) + "\\n")
"""
Kei = Callable[..., subprocess.CompletedProcess[str]]


def _normal(text: str | None) -> str:
    return " ".join((text or "").split())


def _root() -> LazyGroup:
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    return root


@pytest.fixture
def kei(tmp_path: Path) -> Kei:
    env = cli_env(tmp_path / "home")

    def run(*args: str, code: int = 0, extra: dict[str, str] | None = None) -> Any:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *args],
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        err, _, tail = done.stderr.rpartition("\nLOADED ")
        status, loaded = json.loads(tail)
        assert status == code, (args, done.stdout, done.stderr)
        return done.stdout, err, loaded

    run("init")
    return run


def _table() -> list[tuple[str, Lazy]]:
    """Every lazily loaded entry with its full name (``events tail``)."""
    rows: list[tuple[str, Lazy]] = []
    for name, entry in COMMANDS.items():
        if isinstance(entry, Group):
            rows += [(f"{name} {sub}", e) for sub, e in entry.commands.items()]
        else:
            rows.append((name, entry))
    return rows


@pytest.mark.parametrize(("name", "entry"), _table(), ids=[n for n, _ in _table()])
def test_the_table_help_is_the_commands_own(name: str, entry: Lazy) -> None:
    command: Any = _root()
    for part in name.split():
        command = command.commands[part]
    assert _normal(entry.help) == _normal(command.help)


def test_each_module_declares_only_what_the_table_names() -> None:
    from kei.adapters.cli.lazy import _built

    named: dict[str, set[str]] = {}
    for full, entry in _table():
        named.setdefault(entry.module, set()).add(full.split()[-1])
    built: dict[str, Any] = {}
    for module, names in named.items():
        assert set(_built(module, built).commands) == names, module


def test_a_group_help_lists_every_command_without_loading_one(kei: Kei) -> None:
    out, _, loaded = kei("--help")
    assert not [m for m in loaded if m.startswith(("kei.adapters.cli.commands.", "sqlalchemy"))]
    for name in COMMANDS:
        assert name in out


def test_version_answers_before_typer(kei: Kei) -> None:
    out, _, loaded = kei("--version")
    assert out == f"kei {__version__}\n"
    assert loaded == []


def test_version_after_other_options_is_still_the_version(kei: Kei) -> None:
    out, _, _ = kei("--verbose", "--version")
    assert out == f"kei {__version__}\n"


def _writes(kei: Kei) -> list[tuple[str, ...]]:
    """Each fast write command, with what it needs already in the ledger."""
    for agent in ("b", "c", "d", "e"):
        kei("agent", "fork", agent, f"agent/{agent}")
    kei("agent", "done", "d", "--summary", "ok")
    kei("agent", "done", "e", "--summary", "ok")
    routed, _, _ = kei("route", "select", "--json", "--dna", DNA, "--pin", "haiku")
    decision = json.loads(routed)["decision_id"]
    return [
        ("agent", "fork", "a", "agent/a", "--parent", "b"),
        ("agent", "done", "b", "--summary", "ok"),
        ("agent", "fail", "c", "--reason", "no"),
        ("agent", "merged", "d"),
        ("agent", "outcome", "e", "--outcome", "functional"),
        ("cost", "record", "a", "--provider", "anthropic", "--model", "m", "--micro-cents", "5"),
        ("memory", "write", "k", "v", "--dna", DNA),
        ("route", "outcome", decision, "--outcome", "functional"),
        ("skill", "record", "tests", "--success"),
        ("events", "tail", "-n", "5"),
    ]


def test_writes_load_their_own_command_module_only(kei: Kei) -> None:
    for args in _writes(kei):
        _, _, loaded = kei(*args)
        own = {
            "agent": "agent_cmd",
            "cost": "cost_cmd",
            "memory": "memory_cmd",
            "route": "route_cmd",
            "skill": "skill_cmd",
            "events": "tail_cmd",
        }[args[0]]
        assert not [m for m in loaded if m.startswith(("sqlalchemy", "rich"))], args
        commands = [m for m in loaded if m.startswith("kei.adapters.cli.commands.")]
        assert commands == [f"kei.adapters.cli.commands.{own}"], args


def test_a_write_gives_the_same_answer_as_before_the_refusal(kei: Kei) -> None:
    kei("agent", "fork", "a", "agent/a")
    _, err, _ = kei("agent", "fork", "a", "agent/a", code=2)
    assert "agent a already exists: agent ids are unique" in err
    _, err, _ = kei("agent", "fork", "z", "agent/z", "--parent", "nobody", code=2)
    assert "parent agent nobody not found" in err
    kei("agent", "done", "a", "--summary", "first")
    _, err, _ = kei("agent", "done", "a", "--summary", "second")
    assert "already done; first summary kept; nothing appended" in err


def test_global_options_after_the_command(kei: Kei, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    kei("--db", str(other), "init")
    kei("agent", "fork", "late", "agent/late", "--db", str(other))
    out, _, _ = kei("--db", str(other), "events", "tail", "-n", "1", "--json")
    assert json.loads(out)["stream"] == "agent/late"
    out, _, _ = kei("events", "tail", "-n", "1", "--json")
    assert json.loads(out)["type"] == "kei.ledger.genesis"  # the default ledger has no fork


def test_a_global_option_given_twice_is_refused(kei: Kei, tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    _, err, _ = kei("--db", db, "agent", "fork", "a", "b", "--db", db, code=2)
    assert err.splitlines()[0] == (
        "kei: error: --db given both before and after the command; give it once"
    )
    kei("--verbose", "agent", "fork", "a", "agent/a", "--verbose")  # a flag: harmless


def test_every_leaf_takes_the_global_options_unless_it_has_its_own() -> None:
    flags = {g.flag for g in GLOBALS}

    def leaves(command: typer.core.TyperGroup, path: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for name, sub in command.commands.items():
            if isinstance(sub, typer.core.TyperGroup):
                out += leaves(sub, f"{path} {name}")
            else:
                out.append((f"{path} {name}", sub))
        return out

    for path, command in leaves(_root(), "kei"):
        opts = [o for p in command.params for o in p.opts]
        for flag in flags:
            assert opts.count(flag) == 1, (path, flag)


def test_shell_completion_completes_lazily(kei: Kei) -> None:
    complete = {"_KEI_COMPLETE": "complete_bash", "COMP_WORDS": "kei ag", "COMP_CWORD": "1"}
    out, _, loaded = kei(extra=complete)
    assert out.split() == ["agent"]
    assert not [m for m in loaded if m.startswith("kei.adapters.cli.commands.")]
    complete = {"_KEI_COMPLETE": "complete_bash", "COMP_WORDS": "kei agent f", "COMP_CWORD": "2"}
    out, _, _ = kei(extra=complete)
    assert out.split() == ["fork", "fail"]
