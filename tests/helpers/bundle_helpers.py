"""Shared helpers for the bundle tests: extra stores, sample logs, target snapshots."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from kei import Ledger, NewEvent
from kei.adapters.store import open_store
from kei.adapters.store.base import EventStore
from kei.domain import events


def extra_pg_url(request: pytest.FixtureRequest) -> str:
    """Another fresh PostgreSQL database on the test server, dropped after the test."""
    import psycopg

    admin = str(request.getfixturevalue("pg_server"))
    name = f"kei_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return admin.rsplit("/", 1)[0] + "/" + name


def store_url_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    """A fresh store URL of ``kind`` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    return extra_pg_url(request)


def fill(ledger: Ledger, n: int, *, tag: str = "") -> None:
    """Append ``n`` agent and cost events touching every shipped projection."""
    batch: list[NewEvent] = []
    for i in range(n):
        agent = f"a{tag}{i % 5}"
        if i < 5:
            payload: events.Payload = events.AgentForked(agent_id=agent, branch=f"b{tag}{i}")
        elif i % 3 == 0:
            payload = events.SkillInvoked(skill_name=f"s{i % 4}", success=i % 2 == 0)
        else:
            payload = events.CostRecorded(
                agent_id=agent, provider="p", model="m", micro_cents=1000 * i
            )
        batch.append(NewEvent(f"agent/{agent}", payload))
    for start in range(0, len(batch), 1000):
        ledger.append(batch[start : start + 1000])


def rows_of(store: EventStore) -> list[tuple[Any, ...]]:
    """Every stored row as the verifier reads it (bytes as stored)."""
    out: list[tuple[Any, ...]] = []
    after = -(2**62)
    while rows := store.scan(after=after, upto=2**62, limit=5000):
        out += [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
        after = out[-1][0]
    return out


def snapshot(url: str) -> tuple[str, list[tuple[Any, ...]]]:
    """What a replay must leave untouched: the SQLite file bytes (or "pg") and every row."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            return "absent", []
        store = open_store(url)
        try:
            rows = rows_of(store) if store.is_created() else []
        finally:
            store.close()  # the last connection checkpoints the WAL into the file
        files = sorted(path.parent.glob(path.name + "*"))
        digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files))
        return "sqlite:" + digest.hexdigest(), rows
    store = open_store(url)
    try:
        return "pg", rows_of(store) if store.is_created() else []
    finally:
        store.close()
