"""Property: any change to any single stored byte of any event, in either store, is
reported at that event's position.

One ledger per store per test (genesis, a key event, agent events over three streams);
each example changes one byte of one column of one event straight in the database,
runs a full verification, and puts the byte back. Integers (version, seq) change one
bit, i.e. one byte of their 8-byte form. Text columns get any other byte on SQLite
(which stores invalid UTF-8 as readily as valid) and any other ASCII byte on
PostgreSQL (which refuses invalid UTF-8 and NUL in text). A change that collides with
the (stream, version) primary key cannot be stored, so such examples are rejected.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.keys import SigningKey

COLUMNS = [
    ("kei_events", "state"),
    ("kei_events", "originator_id"),
    ("kei_events", "topic"),
    ("kei_events", "originator_version"),
    ("kei_chain", "prev_hash"),
    ("kei_chain", "hash"),
    ("kei_chain", "seq"),
]


class RawDb:
    """One autocommit connection to the store's database, behind kei's back."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite:///")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)

    def _where(self, table: str) -> str:
        if table == "kei_chain":
            return "position"
        return "rowid" if self.sqlite else "notification_id"

    def get(self, table: str, column: str, pos: int) -> Any:
        sql = f"SELECT {column} FROM {table} WHERE {self._where(table)} = {pos}"
        return self.conn.execute(sql).fetchone()[0]

    def set(self, table: str, column: str, pos: int, value: Any) -> None:
        mark = "?" if self.sqlite else "%s"
        if self.sqlite and column in ("originator_id", "topic"):
            mark = "CAST(? AS TEXT)"  # store the exact bytes, valid UTF-8 or not
        sql = f"UPDATE {table} SET {column} = {mark} WHERE {self._where(table)} = {pos}"
        self.conn.execute(sql, (value,))

    def is_key_clash(self, exc: Exception) -> bool:
        return "UNIQUE" in str(exc) or "duplicate key" in str(exc)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def log(store_url: str, make_ledger: Callable[[str], Ledger]) -> Iterator[tuple[Ledger, RawDb]]:
    ledger = make_ledger(store_url)
    ledger.add_key(SigningKey.generate(name="second"))
    ledger.append(
        [
            NewEvent(
                f"agent-{i % 3}", events.AgentForked(agent_id=f"agent-{i % 3}", branch=f"b{i}")
            )
            for i in range(8)
        ]
    )
    db = RawDb(store_url)
    yield ledger, db
    db.close()


def changed(old: Any, column: str, sqlite: bool, data: st.DataObject) -> Any:
    """``old`` with exactly one byte different."""
    if isinstance(old, int):
        return old ^ (1 << data.draw(st.integers(0, 62), label="bit"))
    raw = old.encode() if isinstance(old, str) else bytes(old)
    i = data.draw(st.integers(0, len(raw) - 1), label="offset")
    low = 0 if sqlite or column not in ("originator_id", "topic") else 1  # PG text: no NUL
    top = 255 if low == 0 else 127
    pick = data.draw(st.integers(low, top - 1), label="byte")
    byte = pick if pick < raw[i] else pick + 1  # any value in [low, top] but the old one
    new = raw[:i] + bytes([byte]) + raw[i + 1 :]
    return new if sqlite or isinstance(old, bytes | memoryview) else new.decode()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_single_byte_change_is_reported_at_its_event(
    log: tuple[Ledger, RawDb], data: st.DataObject
) -> None:
    ledger, db = log
    positions = [e.position for e in ledger.read()]
    assert verify_store(ledger.store).ok  # the previous example left no trace
    pos = data.draw(st.sampled_from(positions), label="position")
    table, column = data.draw(st.sampled_from(COLUMNS), label="column")
    old = db.get(table, column, pos)
    try:
        db.set(table, column, pos, changed(old, column, db.sqlite, data))
    except Exception as exc:
        if db.is_key_clash(exc):
            reject()
        raise
    try:
        report = verify_store(ledger.store)
        assert pos in {f.position for f in report.findings}, report.findings
    finally:
        db.set(table, column, pos, old)
