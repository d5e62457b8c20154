"""``kei migrate up`` rebuilds a projection whose code version changed: on PostgreSQL in
shadow tables swapped in with one transaction, while a reader keeps querying the live
table and never errors; on SQLite in place. Each rebuild is a signed event."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.migrate.own_store import own_status, own_up
from kei.domain.events import MemoryWritten
from kei.domain.events.store_schema import STORE_STREAM, ProjectionRebuilt
from kei.projections.event_counts import EventCounts

TABLE = "event_counts_by_type"


class CountsV3(EventCounts):
    """The same read model, its code version moved on."""

    version = 3


def fill(ledger: Ledger, n: int) -> None:
    ledger.append(
        [
            NewEvent(
                f"memory/k{i}", MemoryWritten(namespace="n", key=f"k{i}", value="v", kind="note")
            )
            for i in range(n)
        ]
    )


def built_at_v2(ledger: Ledger) -> None:
    engine = ProjectionEngine(ledger.url, ledger.store, [EventCounts()])
    try:
        engine.catch_up()
    finally:
        engine.close()


def test_a_stale_projection_is_rebuilt_and_recorded(
    store_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    ledger = make_ledger(store_url)
    fill(ledger, 50)
    built_at_v2(ledger)
    (state,) = own_status(ledger, [CountsV3()]).projections
    assert (state.stored_version, state.code_version, state.stale) == (2, 3, True)
    report = own_up(ledger, lambda: [CountsV3()])
    (rebuilt,) = report.rebuilt
    assert (rebuilt.name, rebuilt.from_version, rebuilt.to_version) == ("event_counts", 2, 3)
    assert rebuilt.shadow == store_url.startswith("postgresql")
    assert rebuilt.position == ledger.store.max_position() - 1  # then its own event
    (event,) = ledger.read_stream_checked(STORE_STREAM)
    assert event.payload() == rebuilt
    assert isinstance(rebuilt, ProjectionRebuilt) and rebuilt.digest.startswith("sha256:")
    (state,) = own_status(ledger, [CountsV3()]).projections
    assert (state.stored_version, state.stale) == (3, False)
    assert own_up(ledger, lambda: [CountsV3()]).rebuilt == []
    rows = ledger.store.select(
        f"SELECT type, count FROM {TABLE} WHERE type = ?", ("memory.written",)
    )
    assert rows == [("memory.written", 50)]


def test_postgres_shadow_rebuild_keeps_a_reader_answering(
    pg_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    import psycopg

    ledger = make_ledger(pg_url)
    for _ in range(10):
        fill(ledger, 300)
    built_at_v2(ledger)
    errors: list[BaseException] = []
    answers: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    row = conn.execute(f"SELECT sum(count) FROM {TABLE}").fetchone()
                    answers.append(int(row[0]) if row and row[0] is not None else 0)
                except BaseException as exc:  # every failure is the finding
                    errors.append(exc)
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        own_up(ledger, lambda: [CountsV3()])
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    total = ledger.store.count()
    assert answers and set(answers) <= {total - 0, total - 1, total - 2, total}
    # never an empty or half-built table: the old state (without the rebuild's own
    # event) or the new one
    assert min(answers) >= total - 2
    shadows = ledger.store.select(
        "SELECT count(*) FROM information_schema.schemata WHERE starts_with(schema_name, 'kei_shadow_')"
    )
    assert shadows == [(0,)]
