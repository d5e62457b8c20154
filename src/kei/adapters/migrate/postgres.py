"""A PostgreSQL database as a migration target (psycopg 3, kei's ``postgres`` extra).

PostgreSQL's DDL is transactional: a migration's statements and its tracker row
commit together or not at all, and a killed runner's session is rolled back by the
server. A file is sent as written in one ``execute`` with no parameters
(``server.py``), so psycopg uses the simple-query protocol, which runs several
statements in one call. (Statements PostgreSQL refuses inside a transaction, such as
``CREATE INDEX CONCURRENTLY``, fail and are reported.)

The lock is the session-level ``pg_advisory_lock`` on one fixed key, waited for up to
the lock timeout (``lock_timeout``, reset once taken so it never limits the
migration's own statements). The schema digest reads ``information_schema`` and
``pg_catalog`` for every schema but the system ones.
"""

from __future__ import annotations

from typing import Any, Final

from kei.adapters.migrate.server import ServerTarget, ServerTransaction
from kei.adapters.migrate.sql import NOT_KEI, SERVER_TRACKER_DDL
from kei.adapters.migrate.urls import TargetURL
from kei.adapters.store.urls import postgres_missing

LOCK_KEY: Final = 0x6B65_692D_6D69_6772  # "kei-migr": one advisory key per database
_USER: Final = "NOT LIKE 'pg\\_%' AND {col} <> 'information_schema'"
_CATALOG: Final = {
    "tables": "SELECT table_schema, table_name, table_type FROM information_schema.tables "
    f"WHERE table_schema {_USER.format(col='table_schema')} AND table_name {NOT_KEI}",
    "columns": "SELECT table_schema, table_name, column_name, ordinal_position, data_type, "
    "udt_name, is_nullable, column_default, character_maximum_length, numeric_precision, "
    "numeric_scale FROM information_schema.columns "
    f"WHERE table_schema {_USER.format(col='table_schema')} AND table_name {NOT_KEI}",
    "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
    f"WHERE schemaname {_USER.format(col='schemaname')} AND tablename {NOT_KEI}",
    "constraints": "SELECT n.nspname, coalesce(cl.relname, ''), c.conname, "
    "pg_get_constraintdef(c.oid) FROM pg_constraint c "
    "JOIN pg_namespace n ON n.oid = c.connamespace LEFT JOIN pg_class cl ON cl.oid = "
    f"c.conrelid WHERE n.nspname {_USER.format(col='n.nspname')} "
    f"AND coalesce(cl.relname, '') {NOT_KEI}",
    "views": "SELECT schemaname, viewname, definition FROM pg_views "
    f"WHERE schemaname {_USER.format(col='schemaname')}",
    "sequences": "SELECT sequence_schema, sequence_name, data_type, start_value, increment "
    f"FROM information_schema.sequences WHERE sequence_schema "
    f"{_USER.format(col='sequence_schema')}",
    "triggers": "SELECT trigger_schema, event_object_table, trigger_name, event_manipulation, "
    "action_timing, action_statement FROM information_schema.triggers "
    f"WHERE trigger_schema {_USER.format(col='trigger_schema')}",
    "routines": "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), "
    "md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    f"WHERE n.nspname {_USER.format(col='n.nspname')}",
    "enums": "SELECT n.nspname, t.typname, e.enumlabel, e.enumsortorder FROM pg_enum e "
    "JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace",
}


class _PostgresTransaction(ServerTransaction):
    catalog = _CATALOG


class PostgresTarget(ServerTarget):
    """One psycopg connection to the target database."""

    transactional_ddl = True
    transaction_type = _PostgresTransaction
    ddl = (SERVER_TRACKER_DDL,)

    def __init__(self, url: TargetURL, *, lock_timeout: float) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise postgres_missing() from exc
        self.target, self.driver_error = url.target, psycopg.Error
        self._timeout_ms = max(1, int(lock_timeout * 1000))
        args: dict[str, Any] = {"connect_timeout": 10, **url.connect_args()}
        self._connect(lambda: psycopg.connect(**args))

    def _acquire(self) -> bool:
        import psycopg

        cur = self.conn.cursor()
        cur.execute(f"SET lock_timeout = {self._timeout_ms}")
        try:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            self.conn.rollback()
            return False
        cur.execute("RESET lock_timeout")
        return True

    def _release(self) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
