"""Whether the engine may trust a read model's rows before it extends them.

Two checks, both run by ``ProjectionEngine`` before a catch-up (a projection that fails
either is rebuilt from the log, with a warning logged):

- against the log (always): the state row must name an event the log holds, at the
  same position with the same ``seq`` and hash (a truncated log or an edited state row
  does not);
- against its seal (given a seal key): the state digest authenticated with an HMAC
  (``kei.adapters.readmodels.seal``); after a catch-up, what changed is sealed again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kei.adapters.readmodels import seal as projection_seal
from kei.adapters.readmodels.db import SNAPSHOT
from kei.adapters.readmodels.state import StateRow, locked_state
from kei.adapters.store.base import EventStore
from kei.projections.digest import state_digest

Tables = dict[str, list[sa.Table]]


def off_log(store: EventStore, rows: Iterable[StateRow]) -> dict[str, str]:
    """The projections whose state row names an event the log does not hold at
    that position (same seq and hash), and why: one read of the log per point."""
    out: dict[str, str] = {}
    seen: dict[tuple[int, int | None, bytes | None], str | None] = {}
    for r in rows:
        point = (r.position, r.seq, r.hash)
        if point not in seen:
            seen[point] = _holds(store, *point)
        why = seen[point]
        if why is not None:
            out[r.name] = why
    return out


def _holds(store: EventStore, position: int, seq: int | None, hash: bytes | None) -> str | None:
    """Why the log does not hold the event (position, seq, hash); None if it does."""
    if position == 0 and seq is None and hash is None:
        return None
    if position <= 0:
        return f"its state row is malformed (position {position}, seq {seq})"
    found = store.read(after=position - 1, limit=1)
    if not found or found[0].position != position:
        return (
            f"it last folded position {position}, which the log does not hold "
            "(truncated log, or an edited state row)"
        )
    if found[0].seq != seq or found[0].hash != hash:
        return f"the event at position {position} is not the one it folded"
    return None


def check_seals(
    engine: Engine, key: bytes, tables: Tables, names: list[str], bad: dict[str, str]
) -> dict[str, int]:
    """Check the seal of each of ``names`` not already in ``bad``; add the ones
    that fail to ``bad``; return the position each good seal was checked at."""
    good: dict[str, int] = {}
    for n in names:
        if n in bad:
            continue
        with reading(engine) as conn:
            state = locked_state(conn, n)
            why, _ = projection_seal.check(conn, key, state, tables[n])
        if why is None:
            good[n] = state.position
        else:
            bad[n] = why
    return good


def seal(engine: Engine, key: bytes, tables: Tables, names: Sequence[str]) -> None:
    """Seal each of ``names`` as it stands: its digest read in one snapshot (SQLite)
    or with its state row locked (PostgreSQL), the seal written only if the state
    row has not moved since. An edit made after the snapshot is not in the seal,
    so the next check finds it."""
    for n in names:
        with reading(engine) as conn:
            state = locked_state(conn, n)
            digest = state_digest(conn, tables[n])
            if conn.dialect.name == "postgresql":  # the row lock keeps it as read
                projection_seal.store(conn, key, state, digest)
                continue
        with engine.begin() as conn:
            if locked_state(conn, n) == state:
                projection_seal.store(conn, key, state, digest)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A transaction for a digest: on SQLite a read snapshot (no write lock while
    it runs, so the log's writers go on); on PostgreSQL an ordinary one."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(**{SNAPSHOT: True})
        with conn.begin():
            yield conn
