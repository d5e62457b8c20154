"""Real ``kei migrate`` processes on each backend: one SIGKILLed between a migration and
its tracker row, or between the commit and its log entry, then ``up`` again (nothing is
applied twice, the log says what happened); and two runners at once (each version is
applied by exactly one of them)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import kei
from kei.app.ledger.ledger import Ledger
from migrate_helpers import dialect, killed_run, migration, sql, stream_payloads, stream_types

BEFORE_TRACKER_ROW = ("kei.adapters.migrate.sql", "TrackerRows", "insert_row", "before")
BEFORE_OUTCOME = ("kei.app.migrate.steps", "-", "_outcome", "before")

pytestmark = pytest.mark.slow


def up(
    env: dict[str, str], url: str, folder: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return kei(["migrate", "up", "--target", url, "--dir", str(folder), *extra], env)


def count(url: str) -> list[tuple[object, ...]]:
    return sql(url, "SELECT x FROM t ORDER BY x")


def test_killed_between_migration_and_tracker_row(
    env: dict[str, str], target_url: str, migrations: Path, open_home: Callable[[], Ledger]
) -> None:
    migration(migrations, 1, "t", "CREATE TABLE t (x INT);\nCREATE TABLE u (y INT);\n")
    migration(migrations, 2, "fill", "INSERT INTO t VALUES (2);\n")
    args = ("migrate", "up", "--target", target_url, "--dir", str(migrations))
    killed = killed_run(env, BEFORE_TRACKER_ROW, *args)
    assert killed.returncode == -9, killed.stderr

    again = up(env, target_url, migrations)
    if dialect(target_url) == "mysql":
        # DDL committed as it ran: the run is partial and up refuses until resolved
        assert again.returncode == 1 and "partial" in again.stderr, again.stderr
        assert len(again.stderr.strip().splitlines()) == 2  # the error and its hint
        again = up(env, target_url, migrations, "--resolve-partial", "completed")
    assert again.returncode == 0, again.stderr
    assert count(target_url) == [(2,)]  # migration 2 once; migration 1 not re-run
    assert sql(target_url, "SELECT version FROM _kei_migrations ORDER BY version") == [(1,), (2,)]

    types = stream_types(open_home(), target_url)
    assert types[:2] == ["migrate.started", "migrate.failed"]  # the killed run, reconciled
    failed = stream_payloads(open_home(), target_url)[1]
    assert failed.phase == "interrupted" and failed.partial == (dialect(target_url) == "mysql")
    assert types.count("migrate.applied") + types.count("migrate.resolved") == 2


def test_killed_after_commit_before_the_log_entry(
    env: dict[str, str], target_url: str, migrations: Path, open_home: Callable[[], Ledger]
) -> None:
    migration(migrations, 1, "t", "CREATE TABLE t (x INT);\nINSERT INTO t VALUES (1);\n")
    args = ("migrate", "up", "--target", target_url, "--dir", str(migrations))
    killed = killed_run(env, BEFORE_OUTCOME, *args)
    assert killed.returncode == -9, killed.stderr
    assert stream_types(open_home(), target_url) == ["migrate.started"]  # no outcome yet

    again = up(env, target_url, migrations)
    assert again.returncode == 0, again.stderr
    assert "had committed" in again.stderr
    assert count(target_url) == [(1,)]  # not applied twice
    ledger = open_home()
    assert stream_types(ledger, target_url) == ["migrate.started", "migrate.applied"]
    assert stream_payloads(ledger, target_url)[1].recovered


def test_two_runners_at_once_apply_each_version_once(
    env: dict[str, str], target_url: str, migrations: Path, open_home: Callable[[], Ledger]
) -> None:
    migration(migrations, 1, "t", "CREATE TABLE t (x INT);\nINSERT INTO t VALUES (1);\n")
    for v in range(2, 7):
        migration(migrations, v, f"v{v}", f"INSERT INTO t VALUES ({v});\n")
    command = [sys.executable, "-m", "kei", "migrate", "up", "--target", target_url,
               "--dir", str(migrations)]  # fmt: skip
    runners = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(r.wait(timeout=120), r.communicate()) for r in runners]
    assert [code for code, _ in results] == [0, 0], results
    assert count(target_url) == [(v,) for v in range(1, 7)]  # each exactly once
    types = stream_types(open_home(), target_url)
    assert (types.count("migrate.started"), types.count("migrate.applied")) == (6, 6), types
    assert "migrate.failed" not in types
