"""eventsourcing's own recorder contract, run against kei's chained recorders.

kei extends the library through private hooks (``_insert_events``,
``_fetch_ids_after_insert_events``); running the library's test case on every
upgrade is how we notice when those hooks change (the version is pinned to 9.5.*).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

pytest.importorskip("Crypto", reason="eventsourcing's test module needs pycryptodome")

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE
from kei.adapters.store.postgres_recorder import ChainedPostgresRecorder
from kei.adapters.store.sqlite_recorder import ChainedSQLiteRecorder
from kei.adapters.store.urls import parse_url


class TestChainedSQLiteRecorder(ApplicationRecorderTestCase[ChainedSQLiteRecorder]):
    def setUp(self) -> None:
        self.path = Path(f"/tmp/kei-contract-{uuid.uuid4().hex}.db")

    def tearDown(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def create_recorder(self) -> ChainedSQLiteRecorder:
        recorder = ChainedSQLiteRecorder(
            SQLiteDatastore(str(self.path)), events_table_name=EVENTS_TABLE
        )
        recorder.create_table()
        return recorder

    def test_chain_rows_follow_every_insert(self) -> None:
        recorder = self.create_recorder()
        self.test_insert_select()
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, seq FROM {CHAIN_TABLE} ORDER BY position")
            rows = [tuple(r) for r in c.fetchall()]
        assert rows == [(1, 0), (2, 1), (3, 2)]


@pytest.mark.skipif(
    not os.environ.get("KEI_TEST_POSTGRES_URL"), reason="PostgreSQL: KEI_TEST_POSTGRES_URL not set"
)
class TestChainedPostgresRecorder(ApplicationRecorderTestCase[ChainedPostgresRecorder]):
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False

    def setUp(self) -> None:
        import psycopg

        self.admin = os.environ["KEI_TEST_POSTGRES_URL"]
        self.dbname = f"kei_contract_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self.datastores: list[PostgresDatastore] = []

    def tearDown(self) -> None:
        import psycopg

        for datastore in self.datastores:
            datastore.close()
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def create_recorder(self) -> ChainedPostgresRecorder:
        args = parse_url(self.admin)
        args["dbname"] = self.dbname
        datastore = PostgresDatastore(**args)
        self.datastores.append(datastore)
        recorder = ChainedPostgresRecorder(datastore)
        recorder.create_table()
        return recorder
