"""Helpers for the hostile-input tests: run kei's real entry point (``output.run``, the
console script's code, argv checks and last-resort guard included) in this process,
and read the log's rows straight from SQLite to prove a refused command left it alone."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def assert_one_line_error(self, code: int = 2) -> None:
        """Refused the way kei promises: the code, ``kei: error:`` (+ hint), no traceback."""
        assert self.code == code, self
        assert_no_crash(self)
        lines = self.stderr.splitlines()
        assert lines and lines[0].startswith("kei: error: "), self
        assert all(line.startswith(("kei: error: ", "kei: hint: ")) for line in lines), self


def assert_no_crash(out: Outcome) -> None:
    assert "Traceback" not in out.stderr, out
    assert "kei: internal error" not in out.stderr, out
    assert out.code != 70, out


def run_kei(
    args: Sequence[str], env: Mapping[str, str], stdin: bytes | str | None = None
) -> Outcome:
    """kei's console-script entry point in this process, with ``env`` as os.environ."""
    import os

    from kei.adapters.cli.app import app
    from kei.adapters.cli.output import run

    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("KEI_")}
    runner = CliRunner()
    with runner.isolation(input=stdin, env={**unset, **env}) as (out, err, _):
        try:
            run(app, list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return Outcome(
            code,
            out.getvalue().decode("utf-8", "replace"),
            err.getvalue().decode("utf-8", "replace"),
        )


def log_rows(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every row of the log's two tables (events and chain links), in order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = conn.execute("SELECT * FROM kei_events ORDER BY 1").fetchall()
        chain = conn.execute("SELECT * FROM kei_chain ORDER BY 1").fetchall()
    finally:
        conn.close()
    return events, chain
