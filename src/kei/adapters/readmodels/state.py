"""Where each projection stands: its row in ``kei_projections``, read and claimed in plain SQL.

The state reads and the page claim run on every catch-up; built through SQLAlchemy
they cost more than the rest of a catch-up that finds one new event, so they are SQL
strings written with ``?`` and put into the driver's own parameter style.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from msgspec import Struct
from msgspec.structs import asdict
from sqlalchemy.engine import Connection, Engine

from kei.adapters.readmodels.db import STATE_TABLE, seal_table
from kei.adapters.readmodels.db import state_table as _state
from kei.adapters.readmodels.seal import Sealed
from kei.domain.log.verify import Link
from kei.projections.base import Projection, deferred_indexes

CLAIM: Final = (
    f"UPDATE {STATE_TABLE} SET position = ?, seq = ?, hash = ? "
    "WHERE name = ? AND position = ? AND version = ?"
)
"""Move a state row from where this engine read it; zero rows: another engine won."""

_ROWS: Final = f"SELECT name, version, position, seq, hash FROM {STATE_TABLE} WHERE name"


class ProjectionStatus(Struct, frozen=True):
    name: str
    version: int
    position: int
    digest: bytes

    @property
    def digest_text(self) -> str:
        """The digest as reports and bundle manifests write it: ``sha256:<hex>``."""
        return "sha256:" + self.digest.hex()

    def to_dict(self) -> dict[str, Any]:
        """Every field, in order, the digest as text."""
        return {**asdict(self), "digest": self.digest_text}


class Cursor(Struct, frozen=True):
    """Where a projection stands: its last applied position and that event's link."""

    position: int
    seq: int | None
    hash: bytes | None

    @property
    def link(self) -> Link | None:
        return None if self.seq is None else Link(self.position, self.seq, self.hash)


class StateRow(NamedTuple):
    name: str
    version: int
    position: int
    seq: int | None
    hash: bytes | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.position, self.seq, self.hash)


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` (written with ``?``) in the driver's own parameter style."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def state_rows(engine: Engine, names: Sequence[str]) -> list[StateRow]:
    """The state rows of ``names``, in the engine's own database (which is not the
    store's when a view is caught up into a scratch database)."""
    sql = f"{_ROWS} IN ({','.join('?' * len(names))})"
    with engine.begin() as conn:
        found = conn.exec_driver_sql(driver_sql(conn, sql), tuple(names)).all()
    return [StateRow(n, v, p, s, None if h is None else bytes(h)) for n, v, p, s, h in found]


def locked_state(conn: Connection, name: str) -> Sealed:
    """``name``'s state row; on PostgreSQL held until the transaction ends, so no
    page commits between it and a digest (a SQLite transaction is one snapshot)."""
    sql = f"{_ROWS} = ?"
    if conn.dialect.name == "postgresql":
        sql += " FOR UPDATE"
    n, v, p, s, h = conn.exec_driver_sql(driver_sql(conn, sql), (name,)).one()
    return Sealed(n, v, p, s, None if h is None else bytes(h))


def create_state(conn: Connection, p: Projection, metadata: sa.MetaData) -> None:
    """Create ``p``'s tables and a zero state row unless they exist."""
    metadata.create_all(conn)
    found = conn.execute(sa.select(_state.c.name).where(_state.c.name == p.name)).first()
    if found is None:
        conn.execute(_state.insert().values(name=p.name, version=p.version, position=0))


def reset_state(
    conn: Connection, p: Projection, metadata: sa.MetaData, tables: list[sa.Table]
) -> None:
    """Reset ``p``'s state row and seal, drop and re-create its tables without their
    deferred indexes (caller's transaction).

    The state row goes first: a page being applied holds it before it touches the
    tables, so both take their locks in the same order and cannot deadlock.
    """
    conn.execute(_state.delete().where(_state.c.name == p.name))
    conn.execute(seal_table.delete().where(seal_table.c.name == p.name))
    metadata.drop_all(conn)
    _drop_retired(conn, p)
    metadata.create_all(conn)
    for index in deferred_indexes(tables):
        index.drop(conn)
    conn.execute(_state.insert().values(name=p.name, version=p.version, position=0))


def _drop_retired(conn: Connection, p: Projection) -> None:
    """Drop the tables an earlier version of ``p`` had and this one does not."""
    quote = conn.dialect.identifier_preparer.quote
    for table in getattr(p, "retired", ()):
        if not table.startswith(p.name + "_"):
            raise ValueError(f"projection {p.name} cannot retire table {table}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(table)}")
