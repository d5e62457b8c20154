"""``up``, ``down``, ``status``, ``create`` and ``verify`` on a real SQLite file, PostgreSQL
database and MariaDB database, with the signed history each leaves in the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kei.app.ledger.ledger import Ledger
from kei.app.migrate.runner import RunOptions, migrate_down, migrate_up
from kei.app.migrate.status import migrate_create, migrate_status, migrate_verify
from kei.domain.events.migrate import MigrationApplied, MigrationDrift, MigrationReverted
from kei.domain.migrate.scripts import sha256_hex
from kei.errors import MigrationError
from migrate_helpers import migration, sql, stream_payloads, stream_types

T1 = "CREATE TABLE t (x INT);\nINSERT INTO t VALUES (1);\n"


@pytest.fixture
def led(make_ledger: Callable[[str], Ledger], tmp_path: Path) -> Ledger:
    return make_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


def tracker(url: str) -> list[tuple[int, str]]:
    return [(int(v), str(c).strip()) for v, c in sql(url, "SELECT version, checksum FROM "
                                                          "_kei_migrations ORDER BY version")]  # fmt: skip


def test_apply_status_revert(led: Ledger, target_url: str, migrations: Path) -> None:
    migration(migrations, 1, "t", T1, "DROP TABLE t;\n")
    migration(migrations, 2, "u", "CREATE TABLE u (y INT);", "DROP TABLE u;")
    before = migrate_status(led, target_url, migrations)
    assert (before.applied, before.pending) == (0, 2)

    report = migrate_up(led, target_url, migrations)
    assert [(s.version, s.direction) for s in report.steps] == [(1, "up"), (2, "up")]
    assert sql(target_url, "SELECT x FROM t") == [(1,)]
    up1 = (migrations / "1_t.sql").read_bytes()
    assert tracker(target_url)[0] == (1, sha256_hex(up1))
    assert stream_types(led, target_url) == ["migrate.started", "migrate.applied"] * 2
    applied = stream_payloads(led, target_url)[1]
    assert isinstance(applied, MigrationApplied)
    assert applied.target == report.target and "@" not in applied.target
    assert applied.down_sha256 == sha256_hex((migrations / "1_t.down.sql").read_bytes())
    assert applied.schema_before_sha256 != applied.schema_after_sha256
    assert applied.duration_us is not None

    after = migrate_status(led, target_url, migrations)
    assert (after.applied, after.pending) == (2, 0)
    assert [e.key_id for e in after.entries] == [led.key.key_id_hex] * 2  # type: ignore[union-attr]
    assert migrate_up(led, target_url, migrations).steps == []  # a re-run is a no-op

    down = migrate_down(led, target_url, migrations, 1)
    assert [(s.version, s.direction) for s in down.steps] == [(2, "down")]
    assert [v for v, _ in tracker(target_url)] == [1]
    reverted = stream_payloads(led, target_url)[-1]
    assert isinstance(reverted, MigrationReverted) and reverted.version == 2
    assert migrate_verify(led, target_url, migrations).ok


def test_create_then_down_round_trip(led: Ledger, target_url: str, migrations: Path) -> None:
    """Upstream's defect 1: its own template marked every new down file irreversible."""
    up, down = migrate_create(migrations, "Add Things")
    up.write_text(up.read_text() + "CREATE TABLE things (x INT);\n")
    down.write_text(down.read_text() + "DROP TABLE things;\n")
    migrate_up(led, target_url, migrations)
    report = migrate_down(led, target_url, migrations)
    assert [s.direction for s in report.steps] == ["down"]
    assert tracker(target_url) == []


def test_drift_edited_file_edited_row_hand_made_schema(
    led: Ledger, target_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "t", T1, "DROP TABLE t;")
    migrate_up(led, target_url, migrations)

    sql(target_url, "CREATE TABLE by_hand (z INT)")
    found = migrate_verify(led, target_url, migrations)
    assert [d.drift for d in found.drift] == ["schema-changed"] and found.recorded == 1
    assert migrate_verify(led, target_url, migrations).recorded == 0  # recorded once

    path = migrations / "1_t.sql"
    original = path.read_text()
    path.write_text(original + "-- edited after it was applied\n")
    assert "file-edited" in [d.drift for d in migrate_verify(led, target_url, migrations).drift]
    with pytest.raises(MigrationError, match="file-edited"):
        migrate_up(led, target_url, migrations)
    path.write_text(original)

    sql(target_url, f"UPDATE _kei_migrations SET checksum = '{'f' * 64}' WHERE version = 1")
    assert "tracker-edited" in [d.drift for d in migrate_verify(led, target_url, migrations).drift]
    migration(migrations, 2, "u", "CREATE TABLE u (y INT);")
    with pytest.raises(MigrationError, match="tracker-edited"):
        migrate_up(led, target_url, migrations)
    assert len(tracker(target_url)) == 1  # nothing ran
    report = migrate_up(led, target_url, migrations, RunOptions(accept_drift=True))
    assert [s.version for s in report.steps] == [2]

    drifts = [p.drift for p in stream_payloads(led, target_url) if isinstance(p, MigrationDrift)]
    assert drifts == ["schema-changed", "file-edited", "tracker-edited"]


def test_out_of_order_is_refused_unless_allowed(
    led: Ledger, target_url: str, migrations: Path
) -> None:
    migration(migrations, 10, "ten", "CREATE TABLE ten (x INT);")
    migrate_up(led, target_url, migrations)
    migration(migrations, 5, "five", "CREATE TABLE five (x INT);")
    assert [e.out_of_order for e in migrate_status(led, target_url, migrations).entries] == [
        True,
        False,
    ]
    with pytest.raises(MigrationError, match="older than the newest applied"):
        migrate_up(led, target_url, migrations)
    report = migrate_up(led, target_url, migrations, RunOptions(allow_out_of_order=True))
    assert [s.version for s in report.steps] == [5]


def test_an_applied_file_missing_on_disk_is_reported(
    led: Ledger, target_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "t", T1)
    migrate_up(led, target_url, migrations)
    (migrations / "1_t.sql").unlink()
    status = migrate_status(led, target_url, migrations)
    assert [(e.version, e.state) for e in status.entries] == [(1, "missing-file")]
    assert [d.drift for d in migrate_verify(led, target_url, migrations).drift] == ["file-missing"]
    assert migrate_up(led, target_url, migrations).steps == []  # reported, not refused


def test_a_failing_migration_is_recorded_and_leaves_nothing(
    led: Ledger, target_url: str, migrations: Path
) -> None:
    migration(migrations, 1, "broken", "CREATE TABLE broken (x INT;\n")
    with pytest.raises(MigrationError, match="nothing of it was applied"):
        migrate_up(led, target_url, migrations)
    assert tracker(target_url) == []
    assert stream_types(led, target_url) == ["migrate.started", "migrate.failed"]
    failed = stream_payloads(led, target_url)[-1]
    assert failed.phase == "run" and not failed.partial and failed.error
    assert migrate_verify(led, target_url, migrations).ok  # a clean failure is no drift
