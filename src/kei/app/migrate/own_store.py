"""``kei migrate status|up`` with no ``--target``: kei's own store and read models.

``own_status`` reads, writes nothing: the store's schema version (stored and code),
each projection's stored and code version and position (its row in
``kei_projections``, as it is: no catch-up), and how many events of each (type,
schema version) the log holds (counted in SQL from the envelope's header, unverified:
``kei verify-chain`` checks them).

``own_up`` runs the store's pending steps (``kei.adapters.store.schema``), then
rebuilds every projection whose stored version differs from its code's: on
PostgreSQL in a shadow schema swapped in with one transaction
(``kei.adapters.readmodels.shadow``), so reads keep answering; on SQLite in place.
Each step, once committed, appends one signed event on the ``kei-store`` stream
(``store.migrated``, ``projection.rebuilt``). A store found ahead of its recorded
history (a run killed between a commit and its event) gets its missing
``store.migrated`` first, ``recovered=True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from msgspec import Struct

from kei.adapters.readmodels.db import STATE_TABLE
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.adapters.store.dialect import Dialect
from kei.adapters.store.schema import code_version
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import REGISTRY
from kei.domain.events.store_schema import (
    STORE_STREAM,
    ProjectionRebuilt,
    StoreDialect,
    StoreMigrated,
)
from kei.domain.log.envelope import FORMAT_V1, HEADER_LEN
from kei.errors import InputError
from kei.projections.base import Projection

_SCHEMA_AT: Final = HEADER_LEN - 10 + 1  # 1-based: the u16 before the i64 timestamp
_COUNTS: Final = (
    f"SELECT topic, substr(state, 1, 1), substr(state, {_SCHEMA_AT}, 2), count(*) "
    f"FROM kei_events GROUP BY topic, substr(state, 1, 1), substr(state, {_SCHEMA_AT}, 2)"
)


class ProjectionState(Struct, frozen=True):
    name: str
    stored_version: int | None
    """None: no state row yet (never caught up)."""
    code_version: int
    position: int

    @property
    def stale(self) -> bool:
        return self.stored_version is not None and self.stored_version != self.code_version


class TypeCount(Struct, frozen=True):
    type: str
    schema_version: int | None
    """None: not a format-1 envelope (``kei verify-chain`` says more)."""
    count: int
    current: bool
    """The schema version this kei writes for the type (False also for unknown types)."""


class OwnStatus(Struct, frozen=True):
    store: str
    dialect: StoreDialect
    stored_version: int
    code_version: int
    projections: list[ProjectionState]
    events: list[TypeCount]


class OwnUp(Struct, frozen=True):
    store: str
    dialect: StoreDialect
    from_version: int
    to_version: int
    migrated: list[StoreMigrated]
    rebuilt: list[ProjectionRebuilt]


def dialect_of(ledger: Ledger) -> StoreDialect:
    return "sqlite" if ledger.url.path is not None else "postgresql"


def own_status(ledger: Ledger, projections: Sequence[Projection]) -> OwnStatus:
    """The store, its projections and its events by (type, schema version)."""
    store: Any = ledger.store
    stored = store.stored_schema_version()
    rows: dict[str, tuple[int, int]] = {}
    if ledger.store.select(Dialect.of(store.url).table_exists, (STATE_TABLE,))[0][0]:
        found = ledger.store.select(f"SELECT name, version, position FROM {STATE_TABLE}")
        rows = {str(n): (int(v), int(p)) for n, v, p in found}
    states = [
        ProjectionState(
            p.name, rows.get(p.name, (None, 0))[0], p.version, rows.get(p.name, (0, 0))[1]
        )
        for p in projections
    ]
    return OwnStatus(
        store.url, dialect_of(ledger), stored, code_version(store.store_steps), states,
        event_counts(ledger),
    )  # fmt: skip


def event_counts(ledger: Ledger) -> list[TypeCount]:
    """Events per (type, schema version), by type then version."""
    out = []
    for topic, fmt, schema, n in ledger.store.select(_COUNTS):
        version = int.from_bytes(bytes(schema), "big") if bytes(fmt) == bytes([FORMAT_V1]) else None
        known = REGISTRY.get(str(topic))
        current = known is not None and known.schema_version == version
        out.append(TypeCount(str(topic), version, int(n), current))
    return sorted(out, key=lambda c: (c.type, c.schema_version or 0))


def own_up(
    ledger: Ledger,
    projections: Callable[[], list[Projection]],
    *,
    seal_key: bytes | None = None,
) -> OwnUp:
    """Store steps, then stale projections; each signed into the log (module docstring).
    ``projections`` makes fresh instances (a shadow build needs its own)."""
    store: Any = ledger.store
    dialect = dialect_of(ledger)
    before = store.stored_schema_version()
    migrated = _recover(ledger, before, dialect)
    for step in store.upgrade_schema():
        done = StoreMigrated(
            from_version=step.from_version, to_version=step.to_version, dialect=dialect,
            summary=step.summary, duration_us=step.duration_us,
        )  # fmt: skip
        ledger.append([NewEvent(STORE_STREAM, done)])
        migrated.append(done)
    rebuilt = _rebuild_stale(ledger, projections, dialect, seal_key)
    after = store.stored_schema_version()
    return OwnUp(store.url, dialect, before, after, migrated, rebuilt)


def _recover(ledger: Ledger, stored: int, dialect: StoreDialect) -> list[StoreMigrated]:
    """The ``store.migrated`` a killed run did not append, if the store is ahead of
    what the log records (version 1 needs no record: it is where every store starts)."""
    recorded = 1
    for event in ledger.read_stream_checked(STORE_STREAM):
        try:
            payload = event.payload()
        except InputError:
            continue
        if isinstance(payload, StoreMigrated):
            recorded = max(recorded, payload.to_version)
    if stored <= recorded:
        return []
    missing = StoreMigrated(
        from_version=recorded, to_version=stored, dialect=dialect,
        summary="found migrated, not recorded", recovered=True,
    )  # fmt: skip
    ledger.append([NewEvent(STORE_STREAM, missing)])
    return [missing]


def _rebuild_stale(
    ledger: Ledger,
    projections: Callable[[], list[Projection]],
    dialect: StoreDialect,
    seal_key: bytes | None,
) -> list[ProjectionRebuilt]:
    url = ledger.url
    live = ProjectionEngine(url, ledger.store, projections(), seal_key=seal_key)
    out = []
    try:
        states = live.states()
        stale = [n for n, p in live.projections.items() if states[n][0] != p.version]
        for name in stale:
            began = time.perf_counter_ns()
            if dialect == "postgresql":
                from kei.adapters.readmodels.shadow import shadow_rebuild

                (fresh,) = [p for p in projections() if p.name == name]
                shadow_rebuild(live, url, fresh, seal_key=seal_key)
            else:
                live.rebuild([name])
            took = (time.perf_counter_ns() - began) // 1000
            done = ProjectionRebuilt(
                name=name, from_version=states[name][0],
                to_version=live.projections[name].version, position=live.states()[name][1],
                digest="sha256:" + live.digest(name).hex(), dialect=dialect,
                shadow=dialect == "postgresql", duration_us=took,
            )  # fmt: skip
            ledger.append([NewEvent(STORE_STREAM, done)])
            out.append(done)
    finally:
        live.close()
    return out
