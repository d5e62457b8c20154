"""``kei migrate`` as a user meets it: hostile names, versions and URLs are one-line
errors with nothing appended; credentials never reach the output or the log; the JSON
answers and exit codes; ``create`` never overwrites; ``kei import kei-migrate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import in_process
from kei.adapters.migrate.folder import write_new
from kei.app.ledger.ledger import Ledger
from kei.domain.migrate.naming import new_files
from kei.errors import InputError
from migrate_helpers import migration, sql, write


def events(open_home: Callable[[], Ledger]) -> int:
    return len(list(open_home().read()))


def one_line_error(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("kei: error: "), result.stderr
    assert len(lines) <= 2 and "Traceback" not in result.stderr
    return str(lines[0])


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("1_evil\x1b]0;pwned\x07.sql", "control character"),
        ("1_a\nb.sql", "control character"),
        ("notaversion_x.sql", "not named"),
        ("18446744073709551616_big.sql", "beyond"),
    ],
)
def test_hostile_file_names_are_refused_before_anything(
    env: dict[str, str], tmp_path: Path, open_home: Callable[[], Ledger], filename: str,
    message: str,
) -> None:  # fmt: skip
    folder = tmp_path / "m"
    write(folder, filename, "CREATE TABLE t (x INT);")
    before = events(open_home)
    result = in_process(env)("migrate", "up", "--target", f"sqlite:///{tmp_path}/a.db",
                             "--dir", str(folder), code=2)  # fmt: skip
    assert message in one_line_error(result)
    assert "\x1b" not in result.stderr
    assert events(open_home) == before
    assert not (tmp_path / "a.db").exists()  # refused before connecting


def test_duplicate_versions_are_refused(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "m"
    migration(folder, 1, "a", "SELECT 1;")
    write(folder, "001_b.sql", "SELECT 2;")
    result = in_process(env)("migrate", "status", "--target", f"sqlite:///{tmp_path}/a.db",
                             "--dir", str(folder), code=2)  # fmt: skip
    assert "duplicate migration version 1" in one_line_error(result)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("ftp://user:hunter2pw@host/db", 2, "unsupported target URL scheme"),
        ("postgresql://user:hunter2pw@127.0.0.1:1/db", 3, "cannot connect"),
        ("mysql+pymysql://user:hunter2pw@127.0.0.1:1/db", 3, "cannot connect"),
        ("mysql://user:hunter2pw@host:99999999/db", 2, "out of range"),
        ("mysql://user:hunter2pw@host:port/db", 2, "does not parse"),
        ("sqlite://", 2, "in-memory"),
    ],
)
def test_hostile_urls_are_one_line_and_never_show_the_password(
    env: dict[str, str], tmp_path: Path, open_home: Callable[[], Ledger], url: str, code: int,
    message: str,
) -> None:  # fmt: skip
    before = events(open_home)
    result = in_process(env)("migrate", "up", "--target", url, "--dir", str(tmp_path), code=code)
    assert message in one_line_error(result)
    assert "hunter2pw" not in result.stderr + result.stdout
    assert events(open_home) == before


def test_credentials_never_reach_the_log(
    env: dict[str, str], pg_url: str, tmp_path: Path, open_home: Callable[[], Ledger]
) -> None:
    folder = tmp_path / "m"
    migration(folder, 1, "t", "CREATE TABLE t (x INT);", "DROP TABLE t;")
    # the server trusts local connections: the password is given, sent and ignored
    url = pg_url.replace("postgres@", "postgres:hunter2pw@") + "?application_name=kei"
    run = in_process(env)
    shown = run("migrate", "up", "--target", url, "--dir", str(folder))
    shown2 = run("migrate", "status", "--target", url, "--dir", str(folder), "--json")
    assert "hunter2pw" not in shown.stdout + shown.stderr + shown2.stdout
    stored = b"".join(e.payload_bytes + e.stream.encode() for e in open_home().read())
    assert b"hunter2pw" not in stored and b"application_name" not in stored
    assert json.loads(shown2.stdout)["target"].startswith("postgresql://127.0.0.1:5432/")


def test_no_target_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    # up and status without a target work on kei's own store (tests/store_schema)
    for command in (["down"], ["verify"]):
        result = in_process({**env, "DATABASE_URL": ""})("migrate", *command, code=2)
        assert "no target database" in one_line_error(result)


def test_database_url_is_read_as_upstream_does(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "m"
    migration(folder, 1, "t", "CREATE TABLE t (x INT);")
    url = f"sqlite:///{tmp_path}/app.db"
    run = in_process({**env, "DATABASE_URL": url})
    assert "[up] 1 t — applied" in run("migrate", "up", "--dir", str(folder)).stdout
    status = run("migrate", "status", "--dir", str(folder)).stdout
    assert "APPLIED  1  t" in status and "1 applied, 0 pending" in status


def test_status_and_verify_answer_in_json_and_exit_codes(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    migration(folder, 1, "t", "CREATE TABLE t (x INT);")
    url = f"sqlite:///{tmp_path}/app.db"
    run = in_process(env)
    run("migrate", "up", "--target", url, "--dir", str(folder))
    ok = json.loads(
        run("migrate", "verify", "--target", url, "--dir", str(folder), "--json").stdout
    )
    assert ok["ok"] is True and ok["drift"] == []
    sql(url, "CREATE TABLE by_hand (y INT)")
    bad = run("migrate", "verify", "--target", url, "--dir", str(folder), code=1)
    assert "schema-changed" in bad.stdout
    status = json.loads(run("migrate", "status", "--target", url, "--dir", str(folder),
                            "--json").stdout)  # fmt: skip
    assert (status["applied"], status["pending"]) == (1, 0)
    entry = status["entries"][0]
    assert entry["applied_at"].endswith("Z") and entry["applied_at_text"].endswith("+00:00")
    assert [d["drift"] for d in status["drift"]] == ["schema-changed"]


def test_a_failed_migration_exits_1_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "m"
    migration(folder, 1, "ok", "CREATE TABLE ok (x INT);")
    migration(folder, 2, "bad", "CREATE TABLE bad (x INT;")
    result = in_process(env)("migrate", "up", "--target", f"sqlite:///{tmp_path}/app.db",
                             "--dir", str(folder), code=1)  # fmt: skip
    assert "[up] 1 ok — applied" in result.stdout  # the one before the failure stays
    assert "up migration 2_bad failed" in one_line_error(result)


def test_create_never_overwrites(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    files = new_files("x", datetime(2026, 1, 1, tzinfo=UTC), [])
    write(tmp_path, files.down_file, "mine")
    with pytest.raises(InputError, match="already exists; nothing was overwritten"):
        write_new(tmp_path, files)
    assert (tmp_path / files.down_file).read_text() == "mine"
    assert not (tmp_path / files.up_file).exists()  # nothing half-made left behind


def test_create_prints_both_files(env: dict[str, str], tmp_path: Path) -> None:
    out = in_process(env)("migrate", "create", "Add Users!", "--dir", str(tmp_path / "m")).stdout
    up, down = out.strip().splitlines()
    assert up.endswith("_add_users_.sql") and down.endswith("_add_users_.down.sql")


def test_import_kei_migrate_cli(
    env: dict[str, str], tmp_path: Path, open_home: Callable[[], Ledger]
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    sql(url, "CREATE TABLE _kei_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
             "checksum TEXT NOT NULL, applied_at TEXT NOT NULL)")  # fmt: skip
    sql(url, f"INSERT INTO _kei_migrations VALUES (7, 'seven', '{'a' * 64}', 'not a time')")
    sql(url, f"INSERT INTO _kei_migrations VALUES (8, 'bad\x1bname', '{'b' * 64}', "
             "'2026-01-01T00:00:00Z')")  # fmt: skip
    run = in_process(env)
    dry = run("import", "kei-migrate", "--target", url, "--dry-run")
    assert "dry run" in dry.stdout and events(open_home) == 1  # the genesis only
    done = json.loads(run("import", "kei-migrate", "--target", url, "--json").stdout)
    assert (done["rows"], done["imported"], len(done["not_carried"])) == (2, 1, 1)
    assert any("not RFC 3339" in n for n in done["notes"])
    assert events(open_home) == 2
