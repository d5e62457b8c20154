"""Helpers for ``kei migrate`` tests: migration files, raw SQL on a target behind kei's
back (each dialect's own driver), the target's stream, and a ``kei`` child process
that kills itself with SIGKILL at a named point."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from kei.adapters.migrate.urls import parse_target
from kei.app.ledger.ledger import Ledger

# The tracker table exactly as upstream kei-migrate creates it (its db.rs), written
# out here rather than imported, so a change to kei's DDL cannot pass unnoticed.
UPSTREAM_DDL = {
    "sqlite": """CREATE TABLE IF NOT EXISTS _kei_migrations (
                    version      INTEGER PRIMARY KEY,
                    name         TEXT NOT NULL,
                    checksum     TEXT NOT NULL,
                    applied_at   TEXT NOT NULL
                )""",
    "server": """CREATE TABLE IF NOT EXISTS _kei_migrations (
                    version      BIGINT PRIMARY KEY,
                    name         VARCHAR(255) NOT NULL,
                    checksum     CHAR(64)     NOT NULL,
                    applied_at   VARCHAR(32)  NOT NULL
                )""",
}

# Run kei's CLI in this child, after patching one method (class "-": a module function)
# to SIGKILL the process before or after it runs.
KILLER = """
import os, signal, sys, importlib
module, cls, name, when = sys.argv[1:5]
mod = importlib.import_module(module)
owner = mod if cls == "-" else getattr(mod, cls)
original = getattr(owner, name)
def patched(*args, **kwargs):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(owner, name, patched)
sys.argv = ["kei", *sys.argv[5:]]
from kei.adapters.cli.entry import main
main()
"""


def write(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def migration(folder: Path, version: int, name: str, up: str, down: str | None = None) -> None:
    write(folder, f"{version}_{name}.sql", up)
    if down is not None:
        write(folder, f"{version}_{name}.down.sql", down)


def dialect(url: str) -> str:
    return parse_target(url).target.dialect


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on the target, committed, with its own driver."""
    parsed = parse_target(url)
    if parsed.target.dialect == "sqlite":
        assert parsed.path is not None
        conn = sqlite3.connect(parsed.path)
        try:
            rows = conn.execute(statement).fetchall()
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()
    if parsed.target.dialect == "postgresql":
        import psycopg

        with psycopg.connect(**parsed.connect_args(), autocommit=True) as pg, pg.cursor() as cur:
            cur.execute(statement)  # type: ignore[arg-type]
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
    import pymysql

    conn = pymysql.connect(**parsed.connect_args(), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def stream_types(ledger: Ledger, url: str) -> list[str]:
    return [e.type for e in ledger.read_stream(parse_target(url).target.stream)]


def stream_payloads(ledger: Ledger, url: str) -> list[Any]:
    return [e.payload() for e in ledger.read_stream(parse_target(url).target.stream)]


def killed_run(
    env: dict[str, str], where: tuple[str, str, str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``kei *args`` in a child that SIGKILLs itself before or after ``module.Class.method``."""
    return subprocess.run(
        [sys.executable, "-c", KILLER, *where, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
