"""The SQLite store's per-thread read connections (``sqlite_reads.py``)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kei import Ledger, NewEvent, StoreError
from kei.adapters.store.sqlite import SQLiteStore
from kei.adapters.store.sqlite_reads import ThreadReads
from kei.domain import events


def _merged(agent: str) -> NewEvent:
    return NewEvent(f"agent/{agent}", events.AgentMerged(agent_id=agent))


def test_a_thread_reads_what_another_committed(
    sqlite_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    """A read connection kept by its thread holds no snapshot between statements."""
    ledger = make_ledger(sqlite_url)
    reader = SQLiteStore(sqlite_url.removeprefix("sqlite:///"))
    try:
        assert reader.stream_version("agent/a") == 0
        ledger.append([_merged("a")])
        assert reader.stream_version("agent/a") == 1
        assert reader.stream_versions(["agent/a", "agent/b"]) == {"agent/a": 1}
        seen: list[int] = []
        other = threading.Thread(target=lambda: seen.append(reader.max_position()))
        other.start()
        other.join()
        assert seen == [reader.max_position()] and seen[0] >= 1
    finally:
        reader.close()


def test_reads_after_close_fail_as_store_errors(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db", create=True)
    store.create()
    assert store.stream_version("agent/a") == 0
    store.close()
    with pytest.raises(StoreError):
        store.stream_version("agent/a")


def test_an_ended_thread_frees_its_connection(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db", create=True)
    store.create()
    reads = ThreadReads(str(tmp_path / "l.db"), read_only=False)
    try:
        threads = [threading.Thread(target=reads.rows, args=("SELECT 1",)) for _ in range(5)]
        for t in threads:
            t.start()
            t.join()
        del threads, t
        gc.collect()
        assert reads.rows("SELECT 1") == [(1,)]
        assert len(reads._held) == 1  # only this thread's
    finally:
        reads.close()
        store.close()
