"""One regression test per CLI-layer cause of a traceback found by the hostile-user run
(issue 13, "Why" point 8): each bad input is refused in one line, exit 2, the log left
as it was. The property test over every command is tests/cli/test_cli_hostile_fuzz.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cli_helpers import cli_env
from hostile_helpers import Outcome, assert_no_crash, log_rows, run_kei
from kei.adapters.cli.limits import COUNT_MAX, INT64_MAX
from kei.adapters.files.bounded_read import bounded_lines, open_regular
from kei.errors import InputError

HUGE = "99999999999999999999"
LONG_NAME = "a" * 300
LONG_PATH = "/".join(["d" * 200] * 30)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    env = cli_env(home)
    assert run_kei(["init"], env).code == 0
    assert run_kei(["agent", "fork", "a1", "main"], env).code == 0
    assert run_kei(["memory", "write", "k", "v"], env).code == 0
    return home


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return cli_env(home)


def refused(home: Path, env: dict[str, str], args: list[str], stdin: bytes | None = None) -> str:
    """Run ``args``; assert a one-line refusal, exit 2, and an untouched log."""
    before = log_rows(home / "ledger.db")
    out = run_kei(args, env, stdin)
    out.assert_one_line_error(2)
    assert log_rows(home / "ledger.db") == before
    return out.stderr


# -- arguments and stdin that are not UTF-8 ------------------------------------------


def test_an_argument_that_is_not_utf8_is_refused_by_the_real_console_script(
    home: Path, env: dict[str, str]
) -> None:
    before = log_rows(home / "ledger.db")
    cmd: list[str | bytes] = [sys.executable, "-m", "kei", "memory", "write", b"k\xff", "v"]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.startswith("kei: error: argument 3 is not valid UTF-8"), err
    assert "Traceback" not in err
    assert log_rows(home / "ledger.db") == before


@pytest.mark.parametrize(
    "args",
    [
        ["memory", "write", "k\udcff", "v"],
        ["memory", "query", "--tag-any", "t\udcff"],
        ["keys", "new", "n\udcff"],
        ["llm", "chat", "--model", "m\udcff", "hi"],
    ],
)
def test_surrogate_escaped_arguments_are_refused(
    home: Path, env: dict[str, str], args: list[str]
) -> None:
    assert "is not valid UTF-8" in refused(home, env, args)


def test_an_argument_holding_a_nul_is_refused(home: Path, env: dict[str, str]) -> None:
    assert "contains a NUL character" in refused(home, env, ["keys", "new", "a\x00b"])


def test_a_kei_variable_that_is_not_utf8_is_refused(home: Path, env: dict[str, str]) -> None:
    out = run_kei(["events", "tail"], {**env, "KEI_KEY": "k\udcff"})
    out.assert_one_line_error(2)
    assert "KEI_KEY" in out.stderr


@pytest.mark.parametrize(
    "args", [["memory", "write", "k", "-"], ["events", "import", "-"]], ids=["memory", "events"]
)
def test_stdin_that_is_not_utf8_is_refused(
    home: Path, env: dict[str, str], args: list[str]
) -> None:
    refused(home, env, args, stdin=b"ab\xff\xfe\n")


# -- integers beyond what is stored ------------------------------------------------------

INT_CASES = [
    ["events", "tail", "-n", HUGE],
    ["events", "tail", "-n", str(COUNT_MAX + 1)],
    ["events", "export", "--after", HUGE],
    ["events", "export", "--after", str(INT64_MAX + 1)],
    ["hibernate", "export", "--out", "x.tar.zst", "--after", HUGE],
    ["memory", "query", "--limit", HUGE],
    ["memory", "search", "v", "--limit", HUGE],
    ["cost", "report", "--limit", HUGE],
    ["cost", "record", "a1", "--provider", "p", "--model", "m", "--tokens-in", HUGE],
    ["cost", "record", "a1", "--provider", "p", "--model", "m", "--micro-cents", HUGE],
    ["cost", "record", "a1", "--provider", "p", "--model", "m", "--cents", str(INT64_MAX)],
    ["skill", "record", "s", "--success", "--duration-ms", HUGE],
    ["agent", "outcome", "a1", "--outcome", "functional", "--stubs", HUGE],
    ["agent", "outcome", "a1", "--outcome", "functional", "--escalation-depth", "-1"],
    ["agent", "descendants", "x", "--depth", HUGE],
    ["route", "select", "--dna", "d", "--seed", HUGE],
    ["route", "outcome", "x", "--outcome", "functional", "--escalation-depth", HUGE],
    ["retro", "similar", "s", "-k", HUGE],
    ["retro", "patterns", "--min-count", HUGE],
    ["models", "price", "m", "--input-tokens", HUGE, "--output-tokens", "1"],
    ["verify-chain", "-j", "100000"],
]


@pytest.mark.parametrize("args", INT_CASES, ids=lambda a: " ".join(a[:2] + a[-2:-1]))
def test_integers_out_of_range_are_refused(
    home: Path, env: dict[str, str], args: list[str]
) -> None:
    assert "is not in the range" in refused(home, env, args)


@pytest.mark.parametrize(
    "args",
    [
        ["memory", "query", "--since", HUGE],
        ["memory", "compact", "--before", HUGE],
        ["cost", "report", "--since", HUGE],
        ["skill", "report", "--since", "9" * 5000],
        ["cost", "report", "--since", "99999999999999999d"],
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_times_out_of_range_are_refused(home: Path, env: dict[str, str], args: list[str]) -> None:
    assert "out of range" in refused(home, env, args)


# -- paths no file system accepts --------------------------------------------------------

PATH_CASES = [
    ["leaks", "scan", "{p}"],
    ["machine", "probe", "--mock-dir", "{p}"],
    ["agent", "validate", "a1", "--repo", "{p}"],
    ["import", "kei-ledger", "{p}"],
    ["import", "kei-hibernate", "{p}", "--dry-run"],
    ["hibernate", "inspect", "{p}"],
    ["keys", "new", "{n}"],
    ["events", "import", "{p}"],
    ["retro", "ingest", "{p}", "--session", "s"],
    ["verify-chain", "--checkpoint", "{p}"],
    ["leaks", "list", "--matrix", "{p}"],
    ["--db", "{p}", "events", "tail"],
    ["--key", "{p}/x.key", "memory", "write", "k", "v"],
]


@pytest.mark.parametrize("template", PATH_CASES, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("long", [LONG_NAME, LONG_PATH], ids=["name", "path"])
def test_over_long_paths_are_one_line(
    home: Path, env: dict[str, str], template: list[str], long: str
) -> None:
    args = [a.replace("{p}", long).replace("{n}", LONG_NAME) for a in template]
    before = log_rows(home / "ledger.db")
    out = run_kei(args, env)
    assert_no_crash(out)
    assert out.code != 0, out
    assert len(out.stderr.splitlines()) <= 2, out
    assert log_rows(home / "ledger.db") == before


# -- empty values never mean "the default" -------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "", "events", "tail"],
        ["--db", " ", "memory", "write", "k", "v"],
        ["--key", "", "memory", "write", "k", "v"],
        ["--key", "  ", "keys", "list"],
        ["memory", "get", "k", "--redis", ""],
        ["memory", "query", "--redis", " "],
        ["memory", "get", "k", "--redis", "http://127.0.0.1:9"],
        ["replay", "b.tar.zst", "--db", ""],
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_empty_db_key_and_redis_are_refused(
    home: Path, env: dict[str, str], args: list[str]
) -> None:
    err = refused(home, env, args)
    assert "is empty" in err or "is not a Redis URL" in err or "--db" in err


def test_an_empty_kei_redis_url_is_refused(home: Path, env: dict[str, str]) -> None:
    out = run_kei(["memory", "get", "k"], {**env, "KEI_REDIS_URL": "nonsense"})
    out.assert_one_line_error(2)


# -- KEI_HOME that is a file -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["init"],
        ["events", "tail"],
        ["keys", "list"],
        ["memory", "write", "k", "v"],
        ["models", "list"],
        ["leaks", "list"],
        ["cost", "report"],
        ["verify-chain"],
    ],
    ids=" ".join,
)
def test_kei_home_that_is_a_file_is_one_line(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder\n")
    out = run_kei(args, cli_env(home))
    out.assert_one_line_error(2)
    assert "is not a folder" in out.stderr
    assert home.read_text() == "not a folder\n"


# -- files that never end, or are not files -------------------------------------------------


@pytest.mark.parametrize("source", ["/dev/zero", "{dir}", "{fifo}"])
@pytest.mark.parametrize(
    "command", [["events", "import", "{src}"], ["retro", "ingest", "{src}", "--session", "s"]]
)
def test_reads_refuse_what_is_not_a_regular_file(
    home: Path, env: dict[str, str], tmp_path: Path, source: str, command: list[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    src = source.format(dir=tmp_path, fifo=fifo)
    err = refused(home, env, [a.replace("{src}", src) for a in command])
    assert "is not a regular file" in err


def test_events_import_from_an_endless_stdin_stops_at_the_first_bad_line(
    home: Path, env: dict[str, str]
) -> None:
    refused(home, env, ["events", "import", "-"], stdin=b"\0" * 1_000_000)


def test_a_line_longer_than_the_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"{}\n" + b"x" * 100)
    with open_regular(path) as f:
        lines = bounded_lines(f, "t.jsonl", max_bytes=50)
        assert next(lines) == b"{}\n"
        with pytest.raises(InputError, match="line 2 is longer than 50 bytes"):
            next(lines)


def test_open_regular_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        open_regular(tmp_path / "missing")


# -- the last-resort guard -------------------------------------------------------------------


def _buggy_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def boom(verbose: bool = typer.Option(False, "--verbose")) -> None:
        raise RuntimeError("a bug\nwith a second line")

    return app


def test_an_escaped_exception_is_one_internal_error_line_exit_70(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kei.adapters.cli.output import run

    with CliRunner().isolation() as (_, err, _):
        with pytest.raises(SystemExit) as exit_info:
            run(_buggy_app(), [])
        text = err.getvalue().decode()
    assert exit_info.value.code == 70
    assert text.count("\n") == 1, text
    assert text.startswith("kei: internal error: RuntimeError: a bug\\nwith a second line"), text
    assert "(run with --verbose for the traceback)" in text
    # and the fuzz test's own check counts it as a crash
    with pytest.raises(AssertionError):
        assert_no_crash(Outcome(70, "", text))


def test_verbose_shows_the_traceback_of_an_escaped_exception() -> None:
    from kei.adapters.cli.output import run

    with pytest.raises(RuntimeError, match="a bug"):
        run(_buggy_app(), ["--verbose"])
