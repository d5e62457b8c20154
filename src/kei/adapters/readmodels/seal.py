"""Seals: a read model's state digest authenticated under a local secret.

Anyone who can write the database can edit a read model's rows and its state row,
and recompute any plain digest stored next to them. A seal is
``HMAC-SHA256(key, [name, version, position, seq, hash, digest])``, kept in
``kei_projection_seals(name, position, mac)`` (``db.seal_table``); the key lives in ``KEI_HOME``
(``kei.adapters.readmodels.seal_key``), not in the database. The engine checks a projection's
seal before it trusts its rows (before folding more events onto them, and before a
read) and re-seals after every catch-up that changed them. What a seal check costs:
one full ``state_digest`` of the projection's tables (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kei.adapters.readmodels.db import seal_table
from kei.projections.digest import digest_rows, state_digest
from kei.projections.faults import DIGEST_IF_ROWS

__all__ = ["Sealed", "empty_digest", "one_sealer", "seal_mac"]

_CONTEXT: Final = "kei read-model seal v1"
SEALER_LOCK_KEY: Final = 0x6B65_6973  # "keis": one keyed catch-up at a time
_encode = msgspec.msgpack.Encoder().encode


class Sealed(NamedTuple):
    """A projection's state row as a seal covers it."""

    name: str
    version: int
    position: int
    seq: int | None
    hash: bytes | None


def seal_mac(key: bytes, state: Sealed, digest: bytes) -> bytes:
    """The seal of ``state`` whose tables hash to ``digest``."""
    message = _encode([_CONTEXT, *state, digest])
    return hmac.new(key, message, hashlib.sha256).digest()


def empty_digest(tables: Sequence[sa.Table]) -> bytes:
    """The digest of ``tables`` holding no rows (a projection at position 0)."""
    counted = (t for t in tables if not t.info.get(DIGEST_IF_ROWS))  # as ``state_digest``
    ordered = sorted(counted, key=lambda t: t.name)
    return digest_rows((t.name, [c.name for c in t.columns], []) for t in ordered)


def check(
    conn: Connection, key: bytes, state: Sealed, tables: Sequence[sa.Table]
) -> tuple[str | None, bytes]:
    """Why ``state`` and its tables do not match their seal (None when they do), and
    the digest computed. Call inside a transaction that holds the state row."""
    digest = state_digest(conn, tables)
    found = conn.execute(
        sa.select(seal_table.c.position, seal_table.c.mac).where(seal_table.c.name == state.name)
    ).first()
    if found is None:
        if state.position == 0 and digest == empty_digest(tables):
            return None, digest
        return "it has no seal", digest
    if found.position != state.position:
        return (
            f"its seal is for position {found.position} but its rows stand at {state.position} "
            "(caught up by a program without the seal key, or edited)",
            digest,
        )
    if not hmac.compare_digest(bytes(found.mac), seal_mac(key, state, digest)):
        return "its rows or state row do not match their seal (edited outside kei)", digest
    return None, digest


def store(conn: Connection, key: bytes, state: Sealed, digest: bytes) -> None:
    """Seal ``state`` (caller's transaction)."""
    mac = seal_mac(key, state, digest)
    conn.execute(seal_table.delete().where(seal_table.c.name == state.name))
    conn.execute(seal_table.insert().values(name=state.name, position=state.position, mac=mac))


@contextlib.contextmanager
def one_sealer(engine: Engine) -> Iterator[None]:
    """Hold the database's sealer lock while a keyed catch-up checks, folds and
    re-seals, so no other keyed engine sees the rows ahead of their seal in between
    (it would take that for an edit and rebuild). PostgreSQL: a session advisory
    lock; SQLite: ``flock`` on ``<database file>.seal-lock`` (a database in a folder
    this process cannot write goes without: it cannot be folded into either)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (SEALER_LOCK_KEY,))
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (SEALER_LOCK_KEY,))
                conn.commit()
        return
    path = engine.url.database
    if not path or path == ":memory:":
        yield
        return
    try:
        fd = os.open(f"{path}.seal-lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
