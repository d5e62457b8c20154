"""Every command of the typer app, driven with generated hostile arguments and
environments against a real initialised SQLite ledger (issue 13, "What to build" 7).

The commands are enumerated from ``kei.adapters.cli.app:app``, so a new command is
covered without touching this file. For each example the property is:

- no crash: no "Traceback" and no ``kei: internal error`` line on stderr, no exit 70;
- a value that is always wrong (not UTF-8, an integer beyond its range, a path no file
  system accepts, a device or folder where a file is read, an empty --db/--key/--redis,
  KEI_HOME that is a file) ends with a non-zero exit;
- the log (every row of ``kei_events`` and ``kei_chain``) is unchanged unless the
  command is a writer that exited 0 on input that was not always wrong.

Only 127.0.0.1 ports nothing listens on are ever named as servers. Output options
(``--out``, ``--keep``, a replay's ``--db``) only ever get paths inside the test's
folder: run as root, a device node handed to ``--out`` would be replaced.

The cases this test first found failing are pinned in ``REGRESSIONS`` and run each
on its own, in a child process with bounded memory and time (``test_regression``).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer._click.core import Command, Parameter
from typer._click.types import BoolParamType, FloatParamType, IntParamType, IntRange

from cli_helpers import cli_env
from hostile_helpers import Outcome, assert_no_crash, log_rows, run_kei
from kei.adapters.cli.app import app
from kei.adapters.cli.limits import INT64_MAX

INPUT_TEXT = '{"a": 1}\n'
CLOSED = "127.0.0.1:9"  # the discard port: nothing listens on it here

# Commands that may append to the log when they succeed on valid input.
WRITERS = {
    "init", "keys new", "keys revoke", "events import", "memory write", "memory forget",
    "memory compact", "agent fork", "agent done", "agent fail", "agent merged",
    "agent outcome", "cost record", "cost amend", "skill record", "import kei-ledger",
    "import kei-hibernate", "retro ingest", "route select", "route outcome",
    "route escalate", "route calibrate", "llm chat", "checkpoint", "replay",
    "hibernate import", "budget set", "budget clear", "budget check",
}  # fmt: skip
# Options that name a file or folder kei writes: only paths inside the test folder.
OUTPUTS = {"--out", "-o", "--keep"}
# Commands whose --db is a second store to write (never the fixture's ledger).
SECOND_STORE = {"replay", "hibernate import"}
# Commands too slow to run more than a few examples of (whole demo, process pools).
# Flags that never end on their own (a follow) or start a server: never drawn.
# `--user` too: it names the real ~/.claude/settings.json (`kei hooks install --user`).
# `--foreground` serves a daemon in the test's own process.
NEVER_FLAGS = {"--follow", "--start-server", "--user", "--foreground"}
# Commands that serve until stopped, whatever they are given: their bad input is tested
# where a test can stop them (tests/http/test_serve_cli.py).
SERVERS = {"serve"}
# Commands that exit 0 whatever happens (a hook must never block its agent): what is
# wrong goes to KEI_HOME/hook.log instead, and nothing is appended.
NEVER_FAILS = {"hook claude-code"}
# Commands that record their own failure (a failed model call is an event, then exit 1-3).
RECORDS_FAILURES = {"llm chat"}
# Commands that read neither KEI_HOME nor the global options (a throwaway folder, probes).
HOMELESS = {"demo", "machine probe", "llm backends", "models providers", "migrate create",
            "daemon start", "daemon stop", "daemon status"}  # fmt: skip
# Commands whose only use of KEI_HOME is a default path an option replaces: a witness
# keeps its key at KEI_HOME/keys/witness.key unless --key names one. Given it, the
# command reads no settings, so the global --db and --key are not its to refuse.
HOME_DEFAULTS = {"witness": "--key"}


def _home_replaced(command: str, args: list[str]) -> bool:
    option = HOME_DEFAULTS.get(command.split(maxsplit=1)[0])
    return option is not None and option in args


SLOW = {"demo", "hibernate export", "verify-chain", "replay", "hibernate import", "machine probe"}

# Free text, where newlines and blanks may be meant (values, prompts, patterns, and the
# payload's free-text fields, whose limits in docs/events.md allow newlines).
FREE_TEXT = {"value", "prompt", "system", "text", "pattern", "trajectory", "summary", "reason"}
# Where an empty value has a meaning: `route select --dna ''` falls back (reason
# empty_dna), as upstream's router does.
FREE_TEXT |= {"dna"}

# Cases the first runs of this test found failing (a traceback, an unbounded read, a
# bad value signed into the log), each run on its own below.
REGRESSIONS: list[tuple[str, tuple[str, ...]]] = [
    ("checkpoint", ("--out", "")),
    ("events export", ("--out", "")),
    ("hibernate export", ("--out", "")),
    ("leaks scan", ("/dev/zero",)),
    ("llm chat", ("--model", "", "hi")),  # was refused, yet signed as a failed call
    ("keys new", (" ",)),
    ("keys new", ("a\tb",)),
    ("agent fork", (" ", " ")),
    ("memory write", ("k\x1b[31m", "v")),
    ("init", ("--name", "")),
    ("--db /dev/null/ledger.db init", ()),  # a store whose folder's parent is a file
]


def _commands() -> list[tuple[str, Command]]:
    def walk(cmd: Command, path: list[str]) -> Iterator[tuple[str, Command]]:
        if isinstance(cmd, typer.core.TyperGroup):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    return list(walk(typer.main.get_command(app), []))


COMMANDS = _commands()


@dataclass
class World:
    """A real initialised ledger and the files hostile arguments point at."""

    root: Path
    home: Path
    env: dict[str, str]
    file: Path
    folder: Path
    home_file: Path
    pools: dict[str, list[str]] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.home / "ledger.db"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    env = cli_env(
        home,
        KEI_DAEMON_DIR=str(root / "daemon"),  # `kei daemon start` drawn: stopped at the end
        KEI_OLLAMA_URL=f"http://{CLOSED}",
        KEI_LLAMA_SERVER_URL=f"http://{CLOSED}",
        KEI_LLM_BACKENDS="ollama,llamacpp",
        KEI_GGUF_DIRS=str(root / "no-gguf"),
        KEI_LLAMA_CPP_DIR=str(root / "no-llama"),
        KEI_REDIS_URL=f"redis://{CLOSED}",
    )
    for key in [k for k in env if k.endswith("_API_KEY")]:
        del env[key]
    for args in (["init"], ["agent", "fork", "a1", "main"], ["memory", "write", "k", "v"]):
        assert run_kei(args, env).code == 0
    (root / "file.txt").write_text(INPUT_TEXT)
    (root / "folder").mkdir()
    (root / "home-file").write_text("x\n")
    yield World(root, home, env, root / "file.txt", root / "folder", root / "home-file")
    run_kei(["daemon", "stop"], env)


# -- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    text: str
    bad: bool  # always wrong, whatever the command: must end non-zero
    suspect: bool = False  # empty, blank, control characters, huge: wrong in an identifier


def _ok(text: str) -> Value:
    return Value(text, False)


def _bad(text: str) -> Value:
    return Value(text, True)


LONG_NAME = "n" * 300
LONG_PATH = "/".join(["p" * 200] * 25)
SUSPECT_TEXT = ["", " ", "\t", "a\nb", "\x1b[31mred\x1b[0m", "a\x00b", "x" * 120_000]


def text_values() -> st.SearchStrategy[Value]:
    suspects = [Value(t, False, suspect=True) for t in SUSPECT_TEXT]
    return st.one_of(
        st.sampled_from([*suspects, _ok("\u202eevil"), _ok("a1"), _ok("-1"), _ok("--")]),
        st.text(max_size=40).map(_ok),
        st.text(max_size=10).map(lambda t: _bad(t + "\udcff")),  # invalid UTF-8 in argv
    )


def int_values(param: Parameter) -> st.SearchStrategy[Value]:
    lo, hi = _range(param)

    def judge(n: int) -> Value:
        return Value(str(n), (lo is not None and n < lo) or (hi is not None and n > hi))

    return st.one_of(
        st.sampled_from([0, 1, -1, INT64_MAX, INT64_MAX + 1, -INT64_MAX - 2, 10**20]).map(judge),
        st.integers().map(judge),
        st.sampled_from(["", " ", "1e3", "0x10", "nan", "inf", "9" * 5000]).map(_bad),
    )


def float_values() -> st.SearchStrategy[Value]:
    return st.sampled_from(["0", "-1", "1e999", "nan", "inf", "", "x"]).map(_ok)


def input_paths(w: World) -> st.SearchStrategy[Value]:
    return st.sampled_from(
        [
            _ok(str(w.file)),
            _ok(str(w.folder)),
            _ok(str(w.root / "missing")),
            _ok("/dev/null"),
            _ok("/dev/zero"),
            _ok(""),
            _bad(LONG_NAME),
            _bad(LONG_PATH),
            _bad(str(w.root / "bad\udcff")),
        ]
    )


def output_paths(w: World) -> st.SearchStrategy[Value]:
    return st.sampled_from(
        [
            _ok(""),
            _ok(str(w.folder)),
            _ok(str(w.root / "missing" / "x")),
            _ok(str(w.root / "out.file")),
            _bad(str(w.root / LONG_NAME)),
            _bad(LONG_PATH),
        ]
    )


def _range(param: Parameter) -> tuple[int | None, int | None]:
    t = param.type
    if isinstance(t, IntRange):
        return (None if t.min is None else int(t.min), None if t.max is None else int(t.max))
    return None, None


def _is_path(param: Parameter) -> bool:
    return type(param.type).__name__ == "TyperPath" or param.name in {"source", "path"}


def values_for(param: Parameter, w: World, command: str) -> st.SearchStrategy[Value]:
    opt = param.opts[0]
    if opt in OUTPUTS or (command in SECOND_STORE and opt == "--db"):
        return output_paths(w)
    if _is_path(param):
        return input_paths(w)
    if isinstance(param.type, IntParamType):
        return int_values(param)
    if isinstance(param.type, FloatParamType):
        return float_values()
    if opt == "--redis":
        return st.sampled_from(
            [_bad(""), _bad(" "), _bad("http://x"), _ok(f"redis://{CLOSED}"), _bad("redis://")]
        )
    if "url" in (param.name or "") or opt == "--db":
        return st.sampled_from([_ok(f"http://{CLOSED}"), _ok("mysql://x"), _ok("")])
    return text_values()


def valid_for(param: Parameter, w: World) -> str:
    if param.opts[0] in OUTPUTS:
        return str(w.root / "written.out")  # never an input file the other cases read
    if _is_path(param):
        return str(w.file)
    if isinstance(param.type, IntParamType | FloatParamType):
        return "1"
    return {"outcome": "success", "success": "1", "role": "coder"}.get(param.name or "", "a1")


def _argv(param: Parameter, value: str) -> list[str]:
    if param.param_type_name == "argument":
        return [value]
    return [param.opts[0], value]


GLOBALS = st.sampled_from(
    [
        ((), False),
        (("--db", ""), True),
        (("--db", " "), True),
        (("--key", ""), True),
        (("--key", "  "), True),
        (("--db", f"postgresql://u@{CLOSED}/db"), False),
        (("--db", "mysql://x"), False),
        (("--db", LONG_PATH), False),  # refused only by commands that open the store
        (("--key", "missing-key"), False),
        (("--key", LONG_NAME), False),
        (("--sqlite-sync", "bogus"), False),
    ]
)


# Hostile environments: (variable, value, always wrong for every command).
ENVS = st.sampled_from(
    [
        ("KEI_DB", f"postgresql://u@{CLOSED}/db", False),
        ("KEI_DB", "mysql://x", False),
        ("KEI_KEY", "k\udcff", True),  # not UTF-8: refused before any command runs
        ("KEI_KEY", "../../etc/passwd", False),
        ("KEI_REDIS_URL", "nonsense", False),
        ("KEI_REDIS_URL", "", False),
        ("KEI_SQLITE_SYNCHRONOUS", "bogus", False),
        ("KEI_LEAK_MATRIX_PATH", "/dev/zero", False),
        ("KEI_LLM_BACKENDS", "bogus", False),
    ]
)


@dataclass
class Case:
    args: list[str]
    env: dict[str, str]
    bad: bool
    stdin: bytes | None = None
    suspect: bool = False

    def __repr__(self) -> str:
        kei_env = {k: v for k, v in self.env.items() if k.startswith("KEI_") and "URL" not in k}
        return f"Case(args={self.args!r}, env={kei_env!r}, bad={self.bad}, stdin={self.stdin!r})"


def _one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (False is the simpler value hypothesis leans to)."""
    return st.sampled_from([False] * (n - 1) + [True])


@st.composite
def cases(draw: st.DrawFn, w: World, command: str, cmd: Command) -> Case:
    args = command.split()
    bad = suspect = False
    for param in cmd.params:
        if isinstance(param.type, BoolParamType) and getattr(param, "is_flag", False):
            if draw(st.booleans()) and param.opts[0] not in NEVER_FLAGS:
                args.append(param.opts[0])
            continue
        if param.required:
            if draw(st.booleans()):
                args += _argv(param, valid_for(param, w))
                continue
        elif draw(st.integers(0, 2)) == 0:
            continue
        value = draw(values_for(param, w, command))
        bad = bad or value.bad
        suspect = suspect or (value.suspect and param.name not in FREE_TEXT)
        args += _argv(param, value.text)
    # A bad global option or KEI_HOME ends most commands at once: drawn a quarter and
    # a tenth of the time, so the arguments are reached the rest of the time.
    glob, glob_bad = draw(GLOBALS) if draw(_one_in(4)) else ((), False)
    env = dict(w.env)
    if draw(_one_in(10)):
        env["KEI_HOME"] = str(w.home_file)
        bad = bad or not (command in HOMELESS or _home_replaced(command, args))
    if draw(_one_in(6)):
        name, value, env_bad = draw(ENVS)
        env[name] = value
        bad = bad or env_bad
    stdin = draw(st.sampled_from([None, b"", b"\xff\xfe\n", b"\0" * 1000, b"{}\n"]))
    if command in HOMELESS:
        env["KEI_HOME"] = w.env["KEI_HOME"]
    if command in HOMELESS or _home_replaced(command, args):
        glob_bad = False
    return Case([*glob, *args], env, bad or glob_bad, stdin, suspect and command in WRITERS)


def _check(w: World, command: str, case: Case) -> Outcome:
    before = log_rows(w.db)
    out = run_kei(case.args, case.env, case.stdin)
    assert_no_crash(out)
    # files only ever read (inputs, KEI_HOME as a file) are never written
    assert w.file.read_text() == INPUT_TEXT, (case, out)
    assert w.home_file.read_text() == "x\n", (case, out)
    if (case.bad or case.suspect) and command not in NEVER_FAILS:
        assert out.code != 0, (case, out)
    if (out.code != 0 and command not in RECORDS_FAILURES) or command not in WRITERS:
        assert log_rows(w.db) == before, (case, out)
    return out


def _examples(command: str) -> int:
    """Kept small so the whole file runs in a few minutes on 2 cores; set
    HOSTILE_FUZZ_SCALE=10 for a deeper run."""
    scale = int(os.environ.get("HOSTILE_FUZZ_SCALE", "1"))
    return (3 if command in SLOW else 12) * scale


@pytest.mark.parametrize(("command", "cmd"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_every_command_survives_hostile_input(world: World, command: str, cmd: Command) -> None:
    if command in SERVERS:
        pytest.skip(f"`kei {command}` serves until stopped; see tests/http/test_serve_cli.py")

    @settings(
        max_examples=_examples(command),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(world, command, cmd))
    def prop(case: Case) -> None:
        _check(world, command, case)

    prop()


def test_the_fuzz_covers_every_command() -> None:
    assert len(COMMANDS) >= 60
    names = {c for c, _ in COMMANDS}
    assert {"events tail", "events import", "retro ingest", "memory write"} <= names


@pytest.mark.parametrize(("command", "cmd"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_no_integer_option_is_unbounded(command: str, cmd: Command) -> None:
    for param in cmd.params:
        if isinstance(param.type, IntParamType):
            lo, hi = _range(param)
            assert lo is not None and hi is not None, (command, param.opts)
            assert -INT64_MAX - 1 <= lo <= hi <= INT64_MAX, (command, param.opts)


# -- regressions, each in a child process ------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize(("command", "fragment"), REGRESSIONS, ids=[c for c, _ in REGRESSIONS])
def test_regression(world: World, command: str, fragment: tuple[str, ...]) -> None:
    """Run alone in a child process (bounded memory and time), so an unbounded read
    cannot take this process down: one error line, non-zero, the log unchanged."""
    before = log_rows(world.db)
    done = subprocess.run(
        [sys.executable, "-m", "kei", *command.split(), *fragment],
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limit_memory,
        cwd=world.root,
    )
    assert_no_crash(Outcome(done.returncode, done.stdout, done.stderr))
    assert done.returncode != 0, done.stderr
    assert len(done.stderr.splitlines()) <= 2, done.stderr
    assert log_rows(world.db) == before
