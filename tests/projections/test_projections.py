"""The projection engine: exactly once, incremental equals rebuilt, verified input.

Every test runs on a SQLite file and on the real PostgreSQL (``store_url``). Attacks
are plain SQL behind kei's back (``cli_helpers.run_sql``); failures inside a
projection come from a projection that raises on its Nth event.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain import events
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError, VerificationError
from kei.projections.agents import Agents
from kei.projections.base import Projection
from kei.projections.costs import Costs
from kei.projections.event_counts import EventCounts

TYPES = ("agent.merged", "agent.completed")


def append(ledger: Ledger, n: int, salt: int = 0) -> None:
    """``n`` events over a few streams and two types."""
    batch: list[NewEvent] = []
    for i in range(n):
        agent = f"agent-{(i + salt) % 5}"
        if (i + salt) % 3:
            batch.append(NewEvent(agent, events.AgentMerged(agent_id=agent)))
        else:
            batch.append(NewEvent(agent, events.AgentCompleted(agent_id=agent, summary="ok")))
    ledger.append(batch)


@pytest.fixture
def engines(store_url: str, ledger: Ledger) -> Iterator[Callable[..., ProjectionEngine]]:
    opened: list[ProjectionEngine] = []

    def make(*projections: Projection, page_size: int = 1000) -> ProjectionEngine:
        engine = ProjectionEngine(
            store_url, ledger.store, projections or [EventCounts()], page_size=page_size
        )
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


def counts(url: str, table: str) -> dict[str, int]:
    return {k: n for k, n in run_sql(url, f"SELECT type, count FROM {table}")}


def table_names(url: str) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if url.startswith("sqlite")
        else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    )
    return {r[0] for r in run_sql(url, sql)}


def state(url: str, name: str) -> tuple[int, int, int | None]:
    rows = run_sql(
        url, "SELECT version, position, seq FROM kei_projections WHERE name = ?", (name,)
    )
    return rows[0][0], rows[0][1], rows[0][2]


def expected_types(ledger: Ledger) -> Counter[str]:
    return Counter(e.type for e in ledger.read())


# -- incremental equals rebuilt ------------------------------------------------


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.tuples(st.integers(0, 25), st.booleans()), min_size=1, max_size=6),
    page_size=st.integers(1, 40),
)
def test_incremental_catch_up_equals_a_rebuild_from_zero(
    ledger: Ledger,
    engines: Callable[..., ProjectionEngine],
    steps: list[tuple[int, bool]],
    page_size: int,
) -> None:
    incremental = engines(page_size=page_size)
    for salt, (n, catch_up) in enumerate(steps):
        if n:
            append(ledger, n, salt)
        if catch_up:
            incremental.catch_up()
    incremental.catch_up()
    live = incremental.digest("event_counts")
    incremental.rebuild()
    assert incremental.digest("event_counts") == live
    assert incremental.status()[0].position == ledger.store.max_position()


def test_per_event_apply_equals_per_page_apply(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    class OneByOne(EventCounts):
        def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
            for event in events:
                self.apply(conn, event)

    append(ledger, 40)
    engine = engines(EventCounts("paged"), OneByOne("single"), page_size=7)
    engine.catch_up()
    assert counts(ledger.store.url, "paged_by_type") == counts(ledger.store.url, "single_by_type")


def test_digest_is_equal_on_sqlite_and_postgresql(
    sqlite_url: str, pg_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    digests = []
    for url in (sqlite_url, pg_url):
        ledger = make_ledger(url)
        append(ledger, 30)
        append(ledger, 7, salt=2)
        engine = ProjectionEngine(url, ledger.store, [EventCounts()], page_size=11)
        digests.append(engine.status()[0].digest)
        engine.close()
    assert digests[0] == digests[1]


def test_counts_match_the_log(ledger: Ledger, engines: Callable[..., ProjectionEngine]) -> None:
    append(ledger, 23)
    engines(page_size=5).catch_up()
    assert counts(ledger.store.url, "event_counts_by_type") == expected_types(ledger)


# -- exactly once ----------------------------------------------------------------


class Flaky(EventCounts):
    """Counts like ``EventCounts`` but raises on its ``fail_at``-th event (1-based)."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__("flaky")
        self.fail_at, self.seen = fail_at, 0

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            self.seen += 1
            if self.seen == self.fail_at:
                raise RuntimeError(f"projection bug at event {self.seen}")
            self.apply(conn, event)


def test_a_failure_in_apply_keeps_the_last_page_and_resumes_exactly_once(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    append(ledger, 34)  # 35 events with the genesis
    url = ledger.store.url
    positions = [e.position for e in ledger.read()]
    flaky = Flaky(fail_at=25)
    with pytest.raises(RuntimeError, match="event 25"):
        engines(flaky, page_size=10).catch_up()
    assert state(url, "flaky")[1] == positions[19]  # pages 1-10 and 11-20 committed
    assert sum(counts(url, "flaky_by_type").values()) == 20
    flaky.fail_at = None
    engines(flaky, page_size=10).catch_up()
    assert counts(url, "flaky_by_type") == expected_types(ledger)
    assert state(url, "flaky")[1] == positions[-1]


def test_a_second_engine_does_not_apply_a_page_twice(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    append(ledger, 12)
    first, second = engines(page_size=4), engines(page_size=4)
    first.catch_up()
    second.catch_up()
    append(ledger, 5)
    second.catch_up()
    first.catch_up()
    assert counts(ledger.store.url, "event_counts_by_type") == expected_types(ledger)


def test_engines_racing_on_one_projection_apply_each_event_once(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    append(ledger, 120)
    racers = [engines(page_size=3) for _ in range(3)]
    errors: list[BaseException] = []

    def run(engine: ProjectionEngine) -> None:
        try:
            engine.catch_up()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts(ledger.store.url, "event_counts_by_type") == expected_types(ledger)
    assert state(ledger.store.url, "event_counts")[1] == ledger.store.max_position()


# -- verified input ---------------------------------------------------------------


def pos_col(url: str) -> str:
    return "rowid" if url.startswith("sqlite") else "notification_id"


def test_a_tampered_event_stops_catch_up_at_its_position(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    append(ledger, 20)
    url = ledger.store.url
    positions = [e.position for e in ledger.read()]
    target = positions[12]
    col = pos_col(url)
    (raw,) = run_sql(url, f"SELECT state FROM kei_events WHERE {col} = ?", (target,))[0]
    flipped = bytearray(raw)
    flipped[-1] ^= 0x01
    run_sql(url, f"UPDATE kei_events SET state = ? WHERE {col} = ?", (bytes(flipped), target))
    engine = engines(page_size=5)
    for _ in range(2):
        with pytest.raises(VerificationError, match=f"position {target}: content-changed"):
            engine.catch_up()
        assert state(url, "event_counts")[1] == positions[11]
    with pytest.raises(VerificationError, match=f"position {target}"):
        engine.rebuild()
    assert sum(counts(url, "event_counts_by_type").values()) == 12


def test_a_removed_event_breaks_the_chain(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    append(ledger, 10)
    url = ledger.store.url
    positions = [e.position for e in ledger.read()]
    run_sql(url, f"DELETE FROM kei_events WHERE {pos_col(url)} = ?", (positions[4],))
    with pytest.raises(VerificationError, match=f"position {positions[5]}: event-missing"):
        engines().catch_up()
    assert state(url, "event_counts")[1] == positions[3]


# -- versions, names -----------------------------------------------------------------


def test_a_version_bump_rebuilds(ledger: Ledger, engines: Callable[..., ProjectionEngine]) -> None:
    class Bumped(EventCounts):
        version = EventCounts.version + 1

    append(ledger, 15)
    url = ledger.store.url
    engines().catch_up()
    good = engines().digest("event_counts")
    run_sql(url, "UPDATE event_counts_by_type SET count = 999")  # stale rows, to be dropped
    assert engines().digest("event_counts") != good
    bumped = engines(Bumped())
    bumped.catch_up()
    assert bumped.digest("event_counts") == good
    assert state(url, "event_counts")[0] == EventCounts.version + 1


def test_an_upgrade_drops_the_tables_the_old_version_had(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    append(ledger, 5)
    url = ledger.store.url
    engines().catch_up()
    run_sql(url, "CREATE TABLE event_counts_by_stream (stream TEXT PRIMARY KEY, count BIGINT)")
    run_sql(url, "UPDATE kei_projections SET version = 1 WHERE name = 'event_counts'")
    engines().catch_up()
    assert state(url, "event_counts")[0] == EventCounts.version
    assert "event_counts_by_stream" not in table_names(url)


def index_names(url: str) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'index'"
        if url.startswith("sqlite")
        else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    )
    return {r[0] for r in run_sql(url, sql)}


def test_a_rebuild_builds_deferred_indexes_at_the_end_and_a_crash_cannot_lose_them(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    url = ledger.store.url
    deferred = {"costs_events_agent_idx", "agents_agents_status_idx"}
    engine = engines(Costs(), Agents())
    with engine._engine.begin() as conn:  # what a rebuild does before its first page
        engine._reset(conn, "costs")
    assert "costs_events_agent_idx" not in index_names(url)
    assert "agents_agents_dna_idx" in index_names(url)  # the fold reads it: never deferred
    engines(Costs(), Agents()).catch_up()  # a later engine finishes the job
    assert deferred <= index_names(url)
    engine.rebuild()
    assert deferred <= index_names(url)


def test_unknown_names_and_clashing_tables_are_refused(
    ledger: Ledger, engines: Callable[..., ProjectionEngine]
) -> None:
    with pytest.raises(InputError, match="no projection named 'nope'"):
        engines().rebuild(["nope"])
    with pytest.raises(ValueError, match="two projections are named"):
        engines(EventCounts(), EventCounts())


# -- CLI --------------------------------------------------------------------------------


def test_cli_status_and_rebuild_print_the_digest(tmp_path: Path, store_url: str) -> None:
    env = cli_env(tmp_path / "home", store_url)
    assert kei(["init"], env).returncode == 0
    status = kei(["projections", "status", "--json"], env)
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout.splitlines()[0])
    assert row["name"] == "event_counts"
    assert row["position"] >= 1
    assert row["digest"].startswith("sha256:") and len(row["digest"]) == 7 + 64
    rebuilt = kei(["projections", "rebuild", "event_counts"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert row["digest"] in rebuilt.stdout
    unknown = kei(["projections", "rebuild", "nope"], env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("kei: error: no projection named 'nope'")


def test_engines_opening_a_fresh_database_together_all_succeed(
    store_url: str, make_ledger: Callable[[str], Ledger]
) -> None:
    """Table creation is serialised: racing engines never trip over each other's DDL."""
    import threading

    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.projections.registry import default_projections

    ledger = make_ledger(store_url)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_engine() -> None:
        start.wait()
        try:
            ProjectionEngine(store_url, ledger.store, default_projections()).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_engine) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
