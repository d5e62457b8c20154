"""A MySQL or MariaDB database as a migration target (PyMySQL, kei's ``mysql`` extra).

MySQL and MariaDB commit every DDL statement as it runs, so a migration cannot commit
with its tracker row as one: the runner writes a ``_kei_migrations_started`` row and
commits it first, runs the file, then writes the tracker row and deletes the started
row in one (DML-only, so atomic) transaction. A started row left behind is a run that
did not finish: partial until a person resolves it.

A file is sent as written in one ``execute`` (``server.py``) on a connection with
``CLIENT.MULTI_STATEMENTS``: the *server* splits it, with its own parser (so a
trigger's or procedure's ``BEGIN … END`` needs no client ``DELIMITER``, and no
client-side splitter can disagree with the server), and each statement's result is
read in turn, which counts how many ran before one failed.

The lock is ``GET_LOCK`` on a name derived from the database's name (locks are
server-wide), held by the session and dropped by the server when it ends. The schema
digest reads ``information_schema`` for the current database.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from kei.adapters.migrate.server import ServerTarget, ServerTransaction
from kei.adapters.migrate.sql import NOT_KEI, SERVER_TRACKER_DDL, STARTED_DDL
from kei.adapters.migrate.urls import TargetURL
from kei.errors import InputError

_HERE: Final = "TABLE_SCHEMA = DATABASE()"
_NOT_KEI: Final = f"TABLE_NAME {NOT_KEI}"
_CATALOG: Final = {
    "tables": "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM "
    f"information_schema.TABLES WHERE {_HERE} AND {_NOT_KEI}",
    "columns": "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, "
    "COLUMN_DEFAULT, EXTRA, COLLATION_NAME FROM information_schema.COLUMNS "
    f"WHERE {_HERE} AND {_NOT_KEI}",
    "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, "
    f"INDEX_TYPE FROM information_schema.STATISTICS WHERE {_HERE} AND {_NOT_KEI}",
    "constraints": "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM "
    f"information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() "
    f"AND {_NOT_KEI}",
    "references": "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, "
    f"REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE {_HERE} "
    "AND REFERENCED_TABLE_NAME IS NOT NULL",
    "views": f"SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE {_HERE}",
    "triggers": "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, "
    "ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    "routines": "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM "
    "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()",
}


def mysql_missing() -> InputError:
    return InputError("MySQL/MariaDB support is not installed", hint="pip install 'kei[mysql]'")


class _MysqlTransaction(ServerTransaction):
    has_started_table = True
    catalog = _CATALOG


class MysqlTarget(ServerTarget):
    """One PyMySQL connection to the target database."""

    transactional_ddl = False
    transaction_type = _MysqlTransaction
    ddl = (SERVER_TRACKER_DDL, STARTED_DDL)

    def __init__(self, url: TargetURL, *, lock_timeout: float) -> None:
        try:
            import pymysql
            from pymysql.constants import CLIENT
        except ImportError as exc:
            raise mysql_missing() from exc
        self.target, self.driver_error = url.target, pymysql.Error
        self._timeout = max(0, int(lock_timeout))
        args: dict[str, Any] = {"connect_timeout": 10, "charset": "utf8mb4", **url.connect_args()}
        database = str(args.get("database") or "")
        self._lock = "kei_migrate_" + hashlib.sha256(database.encode()).hexdigest()[:32]
        flags = CLIENT.MULTI_STATEMENTS
        self._connect(lambda: pymysql.connect(**args, client_flag=flags, autocommit=False))

    def _acquire(self) -> bool:
        cur = self.conn.cursor()
        cur.execute("SELECT GET_LOCK(%s, %s)", (self._lock, self._timeout))
        (got,) = cur.fetchone()
        cur.close()
        return bool(got == 1)

    def _release(self) -> None:
        cur = self.conn.cursor()
        cur.execute("SELECT RELEASE_LOCK(%s)", (self._lock,))
        cur.fetchall()
        cur.close()
