"""kei's own store schema version on real SQLite files and PostgreSQL: stamping a
store made by an earlier kei, refusing a store from the future, and steps (a
test-only registry: kei has no step beyond version 1 yet) run by ``own_up``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei
from kei.adapters.files.keyfile import write_key
from kei.adapters.store import open_store
from kei.adapters.store.schema import StoreStep, sql_step
from kei.adapters.store.versioned import Versioned
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.migrate.own_store import own_status, own_up
from kei.domain.events import MemoryWritten
from kei.domain.events.store_schema import STORE_STREAM, StoreMigrated
from kei.domain.log.keys import SigningKey
from kei.errors import StoreError
from kei.projections.registry import default_projections

INDEX = "kei_events_topic_test"
TEST_STEPS = (
    StoreStep(
        2,
        "index events by type",
        sql_step(f"CREATE INDEX {INDEX} ON kei_events (topic)"),
        sql_step(f"CREATE INDEX {INDEX} ON kei_events (topic)"),
    ),
)


def raw(url: str, sql: str) -> list[tuple[object, ...]]:
    """One statement behind kei's back, committed."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        cur = pg.execute(sql)
        return cur.fetchall() if cur.description else []


def stored_version(url: str) -> int:
    if url.startswith("sqlite"):
        return int(raw(url, "PRAGMA user_version")[0][0])  # type: ignore[call-overload]
    if not raw(url, "SELECT to_regclass('kei_meta')")[0][0]:
        return 0  # no kei_meta table: no version at all
    rows = raw(url, "SELECT value FROM kei_meta WHERE key = 'store_version'")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def set_version(url: str, version: int) -> None:
    if url.startswith("sqlite"):
        raw(url, f"PRAGMA user_version = {version}")
    elif version == 0:
        raw(url, "DROP TABLE kei_meta")
    else:
        raw(url, f"UPDATE kei_meta SET value = '{version}' WHERE key = 'store_version'")


def note(ledger: Ledger, key: str) -> None:
    ledger.append(
        [NewEvent(f"memory/{key}", MemoryWritten(namespace="n", key=key, value="v", kind="note"))]
    )


def test_a_new_store_is_created_at_the_code_version(
    store_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    make_ledger(store_url)
    assert stored_version(store_url) == 1


@pytest.fixture
def url_and_ledger(store_url: str, make_ledger: Callable[[str], Ledger]) -> tuple[str, Ledger]:
    return store_url, make_ledger(store_url)


def test_a_store_made_before_versions_is_stamped_1_on_a_writable_open(
    url_and_ledger: tuple[str, Ledger],
) -> None:
    url, ledger = url_and_ledger
    note(ledger, "a")
    ledger.close()
    set_version(url, 0)  # what every earlier kei left: no version at all
    open_store(url, read_only=True).close()
    assert stored_version(url) == 0  # a read-only open writes nothing, on either database
    store = open_store(url)
    store.close()
    assert stored_version(url) == 1


def test_an_unversioned_database_that_is_not_v1_is_refused(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE kei_events (rowid INTEGER PRIMARY KEY, something TEXT)")
    conn.execute("CREATE TABLE kei_chain (position INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not kei's version 1"):
        open_store(sqlite_url)
    assert stored_version(sqlite_url) == 0


def test_a_store_from_the_future_is_refused_and_nothing_is_written(
    url_and_ledger: tuple[str, Ledger], tmp_path: Path
) -> None:
    url, ledger = url_and_ledger
    note(ledger, "a")
    ledger.close()
    set_version(url, 99)
    before = raw(url, "SELECT count(*) FROM kei_events")
    with pytest.raises(StoreError, match="version 99, newer than the 1") as caught:
        Ledger.open(url)
    assert "upgrade kei" in (caught.value.hint or "")
    env = cli_env(tmp_path / "home", url)
    write_key(tmp_path / "home" / "keys" / "default.key", SigningKey.generate())
    for args in (["migrate", "up"], ["migrate", "status", "--json"], ["verify-chain"]):
        done = kei(args, env)
        assert done.returncode != 0, args
        first = done.stderr.splitlines()[0]
        assert "99" in first and "1" in first and "newer" in first, done.stderr
        assert "Traceback" not in done.stderr
    assert raw(url, "SELECT count(*) FROM kei_events") == before
    assert stored_version(url) == 99


def test_steps_run_by_up_signed_and_writes_wait_for_them(
    url_and_ledger: tuple[str, Ledger], monkeypatch: pytest.MonkeyPatch, key: object
) -> None:
    url, ledger = url_and_ledger
    note(ledger, "a")
    ledger.close()
    monkeypatch.setattr(Versioned, "store_steps", TEST_STEPS)
    old = Ledger.open(url, key=key)  # type: ignore[arg-type]
    try:
        assert len(old.read_stream("memory/a")) == 1  # reads keep working
        with pytest.raises(StoreError, match="older than the 2") as caught:
            note(old, "b")
        assert "kei migrate up" in (caught.value.hint or "")
        status = own_status(old, default_projections())
        assert (status.stored_version, status.code_version) == (1, 2)
        counts = {(e.type, e.schema_version): e.count for e in status.events}
        assert counts[("memory.written", 1)] == 1
        report = own_up(old, default_projections)
        assert (report.from_version, report.to_version) == (1, 2)
        note(old, "b")  # the store caught up: writes go through
        (event,) = old.read_stream_checked(STORE_STREAM)
        payload = event.payload()
        assert isinstance(payload, StoreMigrated)
        assert (payload.from_version, payload.to_version, payload.recovered) == (1, 2, False)
        assert payload.dialect == ("sqlite" if url.startswith("sqlite") else "postgresql")
        assert own_up(old, default_projections).migrated == []  # nothing left to do
    finally:
        old.close()
    assert stored_version(url) == 2


def test_a_step_committed_without_its_event_is_recorded_as_recovered(
    url_and_ledger: tuple[str, Ledger], monkeypatch: pytest.MonkeyPatch, key: object
) -> None:
    url, ledger = url_and_ledger
    ledger.close()
    monkeypatch.setattr(Versioned, "store_steps", TEST_STEPS)
    store = open_store(url)
    store.upgrade_schema()  # type: ignore[attr-defined]  # the commit, then "killed"
    store.close()
    again = Ledger.open(url, key=key)  # type: ignore[arg-type]
    try:
        report = own_up(again, default_projections)
        assert [(m.from_version, m.to_version, m.recovered) for m in report.migrated] == [
            (1, 2, True)
        ]
    finally:
        again.close()


def test_sqlite_status_reports_projections(
    sqlite_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    ledger = make_ledger(sqlite_url)
    status = own_status(ledger, default_projections())
    assert {p.name for p in status.projections} >= {"event_counts", "costs"}
    assert not any(p.stale for p in status.projections)
    assert os.path.exists(sqlite_url.removeprefix("sqlite:///"))


def test_the_cli_without_a_target_answers_for_the_own_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    env = cli_env(tmp_path / "home", url)
    assert kei(["init"], env).returncode == 0
    status = kei(["migrate", "status"], env)
    assert status.returncode == 0, status.stderr
    assert "schema 1 (this kei: 1), up to date" in status.stdout
    assert "events kei.ledger.genesis schema 1: 1" in status.stdout
    up = kei(["migrate", "up", "--json"], env)
    assert up.returncode == 0, up.stderr
    assert '"to_version": 1' in up.stdout


def test_status_on_a_store_made_before_versions_writes_nothing(
    url_and_ledger: tuple[str, Ledger], tmp_path: Path
) -> None:
    """`kei migrate status` only looks: an unversioned store stays unversioned, on
    PostgreSQL as on SQLite (the first writable open stamps it, not a status check)."""
    url, ledger = url_and_ledger
    note(ledger, "a")
    ledger.close()
    set_version(url, 0)
    env = cli_env(tmp_path / "home", url)
    status = kei(["migrate", "status"], env)
    assert status.returncode == 0, status.stderr
    assert stored_version(url) == 0
