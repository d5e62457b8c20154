"""``kei daemon``: commands run in a fork of a warm process behave exactly as they do
in their own process (output, exit codes, stdin, working directory, environment), are
recorded exactly once, and a daemon that dies, refuses or was never started only costs
speed: the command then runs where it was typed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei
from kei.app.ledger.ledger import Ledger

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude_code"


def status(env: dict[str, str]) -> dict[str, object]:
    return dict(json.loads(kei(["daemon", "status", "--json"], env).stdout))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An initialised ledger and a running daemon in a private folder of this test's."""
    env = cli_env(tmp_path / "home", KEI_DAEMON_DIR=str(tmp_path / "d"))
    assert kei(["init"], env).returncode == 0
    started = kei(["daemon", "start", "--json", "--idle", "300"], env)
    assert started.returncode == 0, started.stderr
    yield env
    kei(["daemon", "stop"], env)


def events(env: dict[str, str]) -> list[str]:
    lines = kei(["events", "tail", "-n", "1000", "--json"], env).stdout.splitlines()
    return [json.loads(line)["type"] for line in lines]


def test_a_write_runs_in_the_daemon_and_is_recorded_once(env: dict[str, str]) -> None:
    served = status(env)["served"]
    done = kei(["agent", "fork", "a1", "main"], env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "forked a1 -> main\n")
    assert status(env)["served"] == int(str(served)) + 2  # the fork, then the first status
    assert events(env).count("agent.forked") == 1
    assert kei(["verify-chain"], env).returncode == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["agent", "fork", "a1", "main"],  # already exists: a KeiError's exit code
        ["cost", "record", "a1", "--provider", "x"],  # usage error: exit 2
        ["agent", "nope"],
        ["--help"],
        ["agent", "fork", "--help"],
        ["events", "tail", "-n", "5"],
        [
            "memory",
            "write",
            "k",
            "sk-ant-api03-" + "a1B2" * 23 + "-abcdefAA",
            "--dna",
            "c::p::abcdef12::abcdef12-abcdef12",
        ],  # refused: a leak
    ],
)
def test_output_and_exit_code_are_those_of_a_process_of_its_own(
    env: dict[str, str], argv: list[str]
) -> None:
    kei(["agent", "fork", "a1", "main"], env)
    warm = kei(argv, env)
    cold = kei(argv, {**env, "KEI_DAEMON": "off"})
    assert (warm.returncode, warm.stderr) == (cold.returncode, cold.stderr)
    if argv[:2] != ["events", "tail"]:  # the tail's own last line differs by one event
        assert warm.stdout == cold.stdout


def test_stdin_working_directory_and_environment_are_the_callers(
    env: dict[str, str], tmp_path: Path
) -> None:
    payload = (FIXTURES / "pre_task.json").read_text()
    hook = subprocess.run([sys.executable, "-m", "kei", "hook", "claude-code"], input=payload,
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert hook.returncode == 0 and "agent.forked" in events(env)
    work = tmp_path / "work"
    work.mkdir()
    relative = {**env, "KEI_DB": "sqlite:///rel.db"}
    done = subprocess.run([sys.executable, "-m", "kei", "init"], cwd=work, env=relative,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (work / "rel.db").exists()  # the caller's directory, not the daemon's


def test_parallel_hook_calls_are_each_recorded_once(env: dict[str, str]) -> None:
    call = json.loads((FIXTURES / "pre_task.json").read_text())

    def hook(i: int) -> int:
        payload = json.dumps({**call, "tool_use_id": f"toolu_par_{i % 16}"})
        return subprocess.run([sys.executable, "-m", "kei", "hook", "claude-code"],
                              input=payload, env=env, capture_output=True, text=True,
                              check=False, timeout=120).returncode  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hook, range(32))) == {0}
    forked = [e for e in kei(["events", "tail", "-n", "1000", "--json"], env).stdout.splitlines()
              if '"agent.forked"' in e and "toolu_par_" in e]  # fmt: skip
    assert len(forked) == 16
    assert kei(["verify-chain"], env).returncode == 0


def test_a_killed_daemon_costs_only_speed(env: dict[str, str]) -> None:
    os.kill(int(str(status(env)["pid"])), signal.SIGKILL)
    time.sleep(0.2)
    done = kei(["agent", "fork", "a2", "main"], env)
    assert done.returncode == 0 and events(env).count("agent.forked") == 1
    again = kei(["daemon", "start", "--json"], env)  # the dead daemon's socket is replaced
    assert again.returncode == 0, again.stderr
    assert kei(["agent", "fork", "a3", "main"], env).returncode == 0
    assert events(env).count("agent.forked") == 2


def _worker_of(daemon: int) -> int:
    """The one fork of ``daemon`` running a command (waiting for it to appear)."""
    for _ in range(200):
        children = Path(f"/proc/{daemon}/task/{daemon}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("no worker appeared")


def test_a_command_killed_in_the_daemon_says_so_and_is_not_run_again(
    env: dict[str, str],
) -> None:
    daemon = int(str(status(env)["pid"]))
    follower = subprocess.Popen([sys.executable, "-m", "kei", "events", "tail", "--follow"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
    os.kill(_worker_of(daemon), signal.SIGKILL)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 70
    assert err.count("\n") == 1 and "ended without an exit code" in err


def _interrupted(env: dict[str, str], started: Callable[[], object]) -> tuple[int, str]:
    """Exit code and stderr of ``kei events tail --follow`` sent SIGINT once running."""
    follower = subprocess.Popen([sys.executable, "-m", "kei", "events", "tail", "--follow"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
    started()
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    return follower.returncode, err


def test_interrupting_the_caller_interrupts_the_command(env: dict[str, str]) -> None:
    daemon = int(str(status(env)["pid"]))
    workers: list[int] = []
    warm = _interrupted(env, lambda: workers.append(_worker_of(daemon)))
    cold = _interrupted({**env, "KEI_DAEMON": "off"}, lambda: time.sleep(2))
    assert warm == cold
    time.sleep(0.2)
    assert not Path(f"/proc/{workers[0]}").exists() or _state(workers[0]) == "Z"


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_garbage_on_the_socket_appends_nothing_and_the_daemon_serves_on(
    env: dict[str, str],
) -> None:
    import socket

    path = str(status(env)["socket"])
    before = events(env)
    for junk in (b"", b"\xff" * 64, (10**9).to_bytes(4, "big"), b"\0\0\0\x05hello",
                 b"\0\0\0\x20kei-daemon/1\0run\0\0\0\0x\0\0\0"):  # fmt: skip
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(path)
            conn.sendall(junk)
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100)[:1] in (b"", b"R")
    from kei.adapters.daemon import wire
    from kei.adapters.daemon.place import package_dir

    no_stdio = wire.Request("run", sys.prefix, package_dir(), "/", 0o22,
                            ["agent", "fork", "zz", "main"], dict(env))  # fmt: skip
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(path)
        conn.sendall(wire.encode(no_stdio))
        assert conn.recv(100).startswith(b"Rno stdin")
    assert events(env) == before
    assert kei(["agent", "fork", "a9", "main"], env).returncode == 0


def test_a_folder_open_to_others_is_refused_and_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    env = cli_env(tmp_path / "home", KEI_DAEMON_DIR=str(folder))
    started = kei(["daemon", "start"], env)
    assert started.returncode == 2
    assert (
        started.stderr.startswith("kei: error: cannot use ")
        and "open to other users" in started.stderr
    )
    assert list(folder.iterdir()) == []
    assert kei(["init"], env).returncode == 0  # commands still run, in their own process


def test_auto_starts_a_daemon_for_later_commands(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", KEI_DAEMON_DIR=str(tmp_path / "d"), KEI_DAEMON="auto")
    assert kei(["init"], env).returncode == 0  # ran here; a daemon starts meanwhile
    try:
        for _ in range(300):
            if kei(["daemon", "status"], env).returncode == 0:
                break
            time.sleep(0.1)
        assert kei(["daemon", "status"], env).returncode == 0
        assert kei(["agent", "fork", "a1", "main"], env).returncode == 0
        assert int(str(status(env)["served"])) >= 2
    finally:
        kei(["daemon", "stop"], env)


def test_off_bypasses_and_idle_ends_it(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", KEI_DAEMON_DIR=str(tmp_path / "d"))
    assert kei(["daemon", "start", "--idle", "1"], env).returncode == 0
    served = status(env)["served"]
    assert kei(["init"], {**env, "KEI_DAEMON": "off"}).returncode == 0
    assert status(env)["served"] == int(str(served)) + 1  # only the status itself
    time.sleep(2.5)  # a status is a connection too: none while it idles
    assert kei(["daemon", "status"], env).stdout == "not running\n"
    assert not any(p.suffix == ".sock" for p in (tmp_path / "d").iterdir())


def test_stop_when_none_runs_is_not_an_error(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", KEI_DAEMON_DIR=str(tmp_path / "d"))
    stopped = kei(["daemon", "stop"], env)
    assert (stopped.returncode, stopped.stderr) == (0, "kei daemon: not running\n")


def test_the_ledger_sees_daemon_writes_as_its_own(env: dict[str, str]) -> None:
    kei(["agent", "fork", "a1", "main"], env)
    home = Path(env["KEI_HOME"])
    from kei.adapters.files.keyfile import load_key

    key = load_key(home / "keys" / "default.key")
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", key=key) as ledger:
        assert [e.type for e in ledger.read()][-1] == "agent.forked"


def test_a_hook_killed_in_the_daemon_still_exits_0_and_says_so_in_its_log(
    env: dict[str, str],
) -> None:
    daemon = int(str(status(env)["pid"]))
    hook = subprocess.Popen([sys.executable, "-m", "kei", "hook", "claude-code"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    os.kill(_worker_of(daemon), signal.SIGKILL)  # it waits for the payload on stdin
    out, err = hook.communicate(timeout=30)
    assert (hook.returncode, out, err) == (0, b"", b"")
    log = (Path(env["KEI_HOME"]) / "hook.log").read_text()
    assert "ended without an exit code" in log


@pytest.mark.parametrize(
    ("variable", "args", "message"),
    [
        ("/proc/nope/d", [], "kei: error: cannot create /proc/nope/d for the kei daemon"),
        ("{tmp}/d", ["--idle", "inf"], "kei: error: Invalid value for '--idle'"),
        ("{tmp}/d", ["--idle", "nan"], "kei: error: --idle must be a number of seconds"),
        ("{tmp}/d", ["--idle", "1e308"], "kei: error: Invalid value for '--idle'"),
    ],
)
def test_a_bad_start_is_one_line_and_starts_nothing(
    tmp_path: Path, variable: str, args: list[str], message: str
) -> None:
    folder = variable.format(tmp=tmp_path)
    env = cli_env(tmp_path / "home", KEI_DAEMON_DIR=folder)
    started = kei(["daemon", "start", *args], env)
    assert started.returncode == 2
    assert started.stderr.startswith(message), started.stderr
    assert "Traceback" not in started.stderr and started.stderr.count("kei: error") == 1
    sockets = list(Path(folder).glob("*.sock")) if Path(folder).is_dir() else []
    assert sockets == []
