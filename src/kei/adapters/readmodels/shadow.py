"""Rebuilding a read model on PostgreSQL without taking its reads down.

``ProjectionEngine.rebuild`` drops a projection's tables and folds the log again into
empty ones: readers meanwhile see nothing, then a growing part. Here the projection
is built in a schema of its own, ``kei_shadow_<name>`` (a second engine whose whole
search path it is, with its own state row, seal and deferred indexes), from the
verified log, while the old tables keep answering. Then ONE transaction swaps it in:
the schema lock, the live state row (the order a page commit takes its locks in), the
old tables dropped, the new ones moved into the live schema with ``SET SCHEMA``, the
state row and seal copied, the shadow schema dropped. A query that waited on the swap
resolves the table name again and reads the new table; a run killed before the commit
leaves the old tables and state, and a leftover shadow schema that the next run drops.
The live engine then catches up the few events appended during the build.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from kei.adapters.readmodels.db import SEAL_TABLE, STATE_TABLE, lock_schema
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.adapters.store.urls import StoreURL
from kei.projections.base import Projection

log = logging.getLogger(__name__)
SHADOW_PREFIX = "kei_shadow_"


def shadow_rebuild(
    live: ProjectionEngine, url: str | StoreURL, fresh: Projection, *, seal_key: bytes | None = None
) -> None:
    """Rebuild ``fresh.name`` (a new instance of the live engine's projection) in a
    shadow schema and swap it in; the live engine is then caught up."""
    name = fresh.name
    shadow = SHADOW_PREFIX + name
    with live.connect(f"shadow rebuild of {name}") as conn:
        q = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {q(shadow)} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {q(shadow)}")
        conn.commit()
    builder = ProjectionEngine(url, live.store, [fresh], seal_key=seal_key, schema=shadow)
    try:
        builder.catch_up()
        tables = [t.name for t in builder.tables[name]]
    finally:
        builder.close()
    retired: Sequence[str] = getattr(fresh, "retired", ())
    with live.connect(f"swap of {name}") as conn:
        _swap(conn, name, shadow, tables, retired)
        conn.commit()
    log.info("projection %s rebuilt in %s and swapped in", name, shadow)
    live.catch_up([name])


def _swap(
    conn: Connection, name: str, shadow: str, tables: list[str], retired: Sequence[str]
) -> None:
    """The one transaction that puts the shadow tables and state in place."""
    q = conn.dialect.identifier_preparer.quote
    lock_schema(conn)
    here = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
    state, seals, src = q(STATE_TABLE), q(SEAL_TABLE), q(shadow)
    conn.exec_driver_sql(f"SELECT name FROM {state} WHERE name = %(n)s FOR UPDATE", {"n": name})
    for table in [*tables, *(t for t in retired if t.startswith(name + "_"))]:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(here)}.{q(table)}")
    for table in tables:
        conn.exec_driver_sql(f"ALTER TABLE {src}.{q(table)} SET SCHEMA {q(here)}")
    conn.exec_driver_sql(
        f"UPDATE {state} SET version = s.version, position = s.position, seq = s.seq, "
        f"hash = s.hash FROM {src}.{state} s WHERE {state}.name = s.name AND s.name = %(n)s",
        {"n": name},
    )
    conn.exec_driver_sql(f"DELETE FROM {seals} WHERE name = %(n)s", {"n": name})
    conn.exec_driver_sql(
        f"INSERT INTO {seals} SELECT * FROM {src}.{seals} WHERE name = %(n)s", {"n": name}
    )
    conn.exec_driver_sql(f"DROP SCHEMA {src} CASCADE")
