"""SQLite specifics: positions survive VACUUM, durability is configurable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kei import Ledger, NewEvent, StoreError
from kei.adapters.readmodels.db import make_engine
from kei.adapters.store.sqlite import SQLiteStore
from kei.domain import events
from kei.domain.log.findings import FindingKind


def _fill(ledger: Ledger, n: int) -> None:
    ledger.append([NewEvent(f"a{i}", events.AgentMerged(agent_id=f"a{i}")) for i in range(n)])


def test_vacuum_keeps_positions_after_a_deletion(
    sqlite_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    """A deleted row is one finding; VACUUM must not renumber the rows after it."""
    ledger = make_ledger(sqlite_url)
    _fill(ledger, 5)
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM kei_events WHERE rowid = 3")
    conn.close()
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("VACUUM")
    conn.close()
    kinds = {(f.kind, f.position) for f in ledger.verify().findings}
    assert kinds == {(FindingKind.EVENT_MISSING, 4), (FindingKind.EVENT_MISSING, 3)}


def test_clean_log_verifies_after_vacuum(
    sqlite_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    ledger = make_ledger(sqlite_url)
    _fill(ledger, 20)
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None) as conn:
        conn.execute("VACUUM")
    conn.close()
    assert ledger.verify().ok


@pytest.mark.parametrize("mode", ["FULL", "NORMAL", "OFF"])
def test_durability_is_applied(tmp_path: Path, mode: str) -> None:
    store = SQLiteStore(tmp_path / "l.db", synchronous=mode, create=True)
    try:
        store.create()
        rows = store.select("PRAGMA synchronous")
        assert rows[0][0] == {"OFF": 0, "NORMAL": 1, "FULL": 2}[mode]
    finally:
        store.close()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown SQLite durability 'FAST'"):
        SQLiteStore(tmp_path / "l.db", synchronous="FAST", create=True)
    assert not (tmp_path / "l.db").exists()


@pytest.mark.parametrize("journal", ["WAL", "MEMORY"])
def test_journal_is_applied(tmp_path: Path, journal: str) -> None:
    """A scratch store (MEMORY) never turns its file into WAL; every other one is WAL."""
    store = SQLiteStore(tmp_path / "l.db", synchronous="OFF", create=True, journal=journal)
    try:
        store.create()
        assert store.select("PRAGMA journal_mode")[0][0] == journal.lower()
    finally:
        store.close()
    assert not (tmp_path / "l.db-wal").exists() or journal == "WAL"
    with sqlite3.connect(tmp_path / "l.db") as conn:  # WAL lives in the file; MEMORY not
        found = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert found == ("wal" if journal == "WAL" else "delete")


def test_unknown_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown SQLite journal 'OFF'"):
        SQLiteStore(tmp_path / "l.db", create=True, journal="OFF")
    assert not (tmp_path / "l.db").exists()


@pytest.mark.parametrize("scratch", [False, True])
def test_projection_engines_on_scratch_files_keep_their_journal_in_memory(
    tmp_path: Path, scratch: bool
) -> None:
    """A replay's rebuild (scratch) writes each page once and never syncs; the read
    models beside a live log stay in WAL with NORMAL durability."""
    store = SQLiteStore(tmp_path / "l.db", create=True)
    store.create()  # a kei store: WAL
    store.close()
    url = f"sqlite:///{tmp_path / ('scratch.db' if scratch else 'l.db')}"
    engine = make_engine(url, scratch=scratch)
    try:
        with engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        engine.dispose()
    assert (journal, synchronous) == (("memory", 0) if scratch else ("wal", 1))
