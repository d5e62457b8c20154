"""MariaDB's implicit DDL commits make a failed migration partial, reported and refused
until a person resolves it; an upstream kei-migrate tracker table is imported into the
log (idempotently) and the database carries on under kei."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kei.app.ledger.ledger import Ledger
from kei.app.migrate.importing import import_kei_migrate
from kei.app.migrate.runner import RunOptions, migrate_down, migrate_up
from kei.app.migrate.status import migrate_status, migrate_verify
from kei.domain.events.migrate import MigrationApplied, MigrationFailed, MigrationResolved
from kei.domain.migrate.scripts import sha256_hex
from kei.errors import MigrationError
from migrate_helpers import UPSTREAM_DDL, dialect, migration, sql, stream_payloads, stream_types


@pytest.fixture
def led(make_ledger: Callable[[str], Ledger], tmp_path: Path) -> Ledger:
    return make_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


def tables(url: str) -> set[str]:
    return {r[0] for r in sql(url, "SHOW TABLES")} - {"_kei_migrations", "_kei_migrations_started"}


def test_mariadb_implicit_commit_is_reported_partial(
    led: Ledger, mysql_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "two", "CREATE TABLE a (x INT);\nCREATE TABLE b (;\n")
    with pytest.raises(MigrationError, match=r"1 statement.*partly applied"):
        migrate_up(led, mysql_url, migrations)
    assert tables(mysql_url) == {"a"}  # MariaDB committed the first CREATE TABLE
    failed = stream_payloads(led, mysql_url)[-1]
    assert isinstance(failed, MigrationFailed)
    assert (failed.partial, failed.statements_run, failed.phase) == (True, 1, "run")

    assert [e.state for e in migrate_status(led, mysql_url, migrations).entries] == ["partial"]
    verify = migrate_verify(led, mysql_url, migrations)
    assert not verify.ok and [n.version for n in verify.partial] == [1]
    with pytest.raises(MigrationError, match="partial"):
        migrate_up(led, mysql_url, migrations)

    # the person undoes it by hand and fixes the file; then it runs again, whole
    sql(mysql_url, "DROP TABLE a")
    migration(migrations, 1, "two", "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n")
    report = migrate_up(led, mysql_url, migrations, RunOptions(resolve_partial="undone"))
    assert [s.version for s in report.steps] == [1]
    assert tables(mysql_url) == {"a", "b"}
    resolved = [p for p in stream_payloads(led, mysql_url) if isinstance(p, MigrationResolved)]
    assert [(r.version, r.resolution) for r in resolved] == [(1, "undone")]
    assert migrate_verify(led, mysql_url, migrations).ok


def test_a_partial_completed_by_hand_is_recorded_as_applied(
    led: Ledger, mysql_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "two", "CREATE TABLE a (x INT);\nCREATE TABLE b (;\n", "DROP TABLE a;")
    with pytest.raises(MigrationError):
        migrate_up(led, mysql_url, migrations)
    sql(mysql_url, "CREATE TABLE b (y INT)")  # finished by hand
    migrate_up(led, mysql_url, migrations, RunOptions(resolve_partial="completed"))
    assert [v for (v,) in sql(mysql_url, "SELECT version FROM _kei_migrations")] == [1]
    assert sql(mysql_url, "SELECT COUNT(*) FROM _kei_migrations_started") == [(0,)]
    assert migrate_verify(led, mysql_url, migrations).ok
    assert [s.version for s in migrate_down(led, mysql_url, migrations).steps] == [1]


def test_a_failure_at_the_first_statement_is_not_partial(
    led: Ledger, mysql_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "bad", "CREATE TABLE (;\nCREATE TABLE b (y INT);\n")
    with pytest.raises(MigrationError, match="nothing of it was applied"):
        migrate_up(led, mysql_url, migrations)
    assert sql(mysql_url, "SELECT COUNT(*) FROM _kei_migrations_started") == [(0,)]
    assert migrate_status(led, mysql_url, migrations).entries[0].state == "pending"


def test_a_trigger_body_runs_whole_on_mariadb(
    led: Ledger, mysql_url: str, migrations: Path
) -> None:
    """The server splits the file: a BEGIN ... END body needs no DELIMITER."""
    migration(
        migrations,
        1,
        "trigger",
        "CREATE TABLE n (x INT);\nCREATE TABLE seen (x INT);\n"
        "CREATE TRIGGER n_seen AFTER INSERT ON n FOR EACH ROW BEGIN\n"
        "  INSERT INTO seen VALUES (NEW.x);\n  INSERT INTO seen VALUES (NEW.x + 1);\nEND;\n"
        "INSERT INTO n VALUES (5);\n",
    )
    migrate_up(led, mysql_url, migrations)
    assert sorted(sql(mysql_url, "SELECT x FROM seen")) == [(5,), (6,)]


def _upstream_table(url: str) -> None:
    kind = "sqlite" if dialect(url) == "sqlite" else "server"
    sql(url, UPSTREAM_DDL[kind])


def test_an_upstream_tracker_table_is_imported_and_continued(
    led: Ledger, target_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "a", "CREATE TABLE a (x INT);")
    migration(migrations, 2, "b", "CREATE TABLE b (x INT);")
    # the database as upstream left it: its tables made, its tracker rows written
    _upstream_table(target_url)
    sql(target_url, "CREATE TABLE a (x INT)")
    sql(target_url, "CREATE TABLE b (x INT)")
    for version, when in ((1, "2026-01-01T12:00:00+00:00"), (2, "2026-01-02T12:00:00+00:00")):
        checksum = sha256_hex((migrations / f"{version}_{'ab'[version - 1]}.sql").read_bytes())
        name = "ab"[version - 1]
        sql(target_url, f"INSERT INTO _kei_migrations VALUES ({version}, '{name}', "
                        f"'{checksum}', '{when}')")  # fmt: skip

    status = migrate_status(led, target_url, migrations)
    assert [d.drift for d in status.drift] == ["row-added", "row-added"]

    report = import_kei_migrate(led, target_url)
    assert (report.rows, report.imported, report.already) == (2, 2, 0)
    events = stream_payloads(led, target_url)
    assert all(isinstance(e, MigrationApplied) and e.origin is not None for e in events)
    assert events[0].origin.ref == "_kei_migrations/1"  # type: ignore[union-attr]
    assert events[0].origin.source == "kei-migrate"  # type: ignore[union-attr]
    assert events[0].origin.occurred_at_us == 1_767_268_800_000_000  # type: ignore[union-attr]
    assert events[1].schema_after_sha256 is not None  # the baseline for verify
    assert import_kei_migrate(led, target_url).imported == 0  # idempotent
    assert migrate_verify(led, target_url, migrations).ok

    migration(migrations, 3, "c", "CREATE TABLE c (x INT);", "DROP TABLE c;")
    assert [s.version for s in migrate_up(led, target_url, migrations).steps] == [3]
    assert stream_types(led, target_url)[-2:] == ["migrate.started", "migrate.applied"]
    assert migrate_verify(led, target_url, migrations).ok
    assert [s.version for s in migrate_down(led, target_url, migrations).steps] == [3]
