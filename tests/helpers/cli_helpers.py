"""Helpers for CLI tests: run ``python -m kei`` for real or kei's app in this process,
read a follower's lines, raw SQL."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

WAIT_S = 20.0


def cli_env(home: Path, db: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for one CLI run: our KEI_HOME and store, nothing from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEI_")}
    env["KEI_HOME"] = str(home)
    if db is not None:
        env["KEI_DB"] = db
    env.update(extra)
    return env


def in_process(env: dict[str, str]) -> Callable[..., Any]:
    """``run(*args, code=0, stdin=None)``: kei's app in this process (typer's runner),
    asserting the exit code unless ``code`` is None; returns the runner's result."""

    def run(*args: str, code: int | None = 0, stdin: str | None = None) -> Any:
        from typer.testing import CliRunner

        from kei.adapters.cli.app import app

        result = CliRunner().invoke(app, list(args), env=env, input=stdin)
        if code is not None:
            assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    return run


def kei(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "kei", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_sql(url: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Run one statement straight on the database, behind kei's back (for tampering)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg, pg.cursor() as cur:
        cur.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


class Follower:
    """A ``kei events tail --follow`` child process whose output lines we can wait for."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kei", "events", "tail", "--follow", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.seen_err: list[str] = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, q), daemon=True).start()

    def next_line(self, q: queue.Queue[str] | None = None, timeout: float = WAIT_S) -> str:
        try:
            line = (q or self.out).get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no line within {timeout} s; stderr so far: {self.drain_err()}"
            ) from None
        if q is self.err:
            self.seen_err.append(line)
        return line

    def wait_for(self, pred: Callable[[str], bool], q: queue.Queue[str] | None = None) -> str:
        while True:
            line = self.next_line(q)
            if pred(line):
                return line

    def drain_err(self) -> list[str]:
        while True:
            try:
                self.seen_err.append(self.err.get_nowait())
            except queue.Empty:
                return self.seen_err

    def interrupt(self) -> int:
        """Ctrl-C, as a user would press it; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=WAIT_S)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT_S)


def _pump(stream: Any, q: queue.Queue[str]) -> None:
    for line in stream:
        q.put(line.rstrip("\n"))
