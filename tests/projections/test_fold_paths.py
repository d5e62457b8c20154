"""The fast paths of the folds give the rows the plain ones did, on both stores.

A rebuild folds a million events, so the projections build rows as tuples, insert
them many to a statement (``RowInserter``), look rows up with precompiled ``IN``
lists (``KeyLookup``) and open events with one header unpack. These tests pin what
each shortcut must keep: the same rows, in the same order, for any batch or page
split, including raw events no command would append (racing writers, imports).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from kei.adapters.readmodels.engine import ProjectionEngine
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain import events as ev
from kei.domain.events.payload import Origin, TokenUsage
from kei.domain.log.envelope import HEADER_LEN, state_parts
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord
from kei.projections.base import KeyLookup, RowInserter
from kei.projections.costs import Costs
from kei.projections.registry import default_projections

DAY_US = 86_400_000_000


@pytest.fixture
def scratch(store_url: str) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """A throwaway table on the store: text and integer key, nullable and bool columns."""
    engine = sa.create_engine(store_url)
    table = sa.Table(
        f"fold_scratch_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        sa.Column("k", sa.String, primary_key=True),
        sa.Column("n", sa.BigInteger, primary_key=True),
        sa.Column("note", sa.String),
        sa.Column("flag", sa.Boolean, nullable=False),
    )
    table.create(engine)
    try:
        yield engine, table
    finally:
        table.drop(engine)
        engine.dispose()


@pytest.mark.parametrize("count", [0, 1, 2, 62, 63, 64, 65, 200])
def test_row_inserter_keeps_every_row_whatever_the_batch(
    scratch: tuple[sa.Engine, sa.Table], count: int
) -> None:
    engine, table = scratch
    insert = RowInserter(table, max_batch=3)
    rows = [(f"k{i % 7}", i, None if i % 3 else f"n{i}", i % 2 == 0) for i in range(count)]
    with engine.begin() as conn:
        insert(conn, rows)
        insert(conn, [])  # nothing, and no statement
    with engine.connect() as conn:
        stored = conn.execute(sa.select(table).order_by(table.c.n)).all()
    assert [(k, n, note, bool(flag)) for k, n, note, flag in stored] == rows


def test_row_inserter_batches_within_the_parameter_limit(
    scratch: tuple[sa.Engine, sa.Table],
) -> None:
    _, table = scratch
    assert RowInserter(table).batch == 64
    wide = sa.Table("w", sa.MetaData(), *(sa.Column(f"c{i}", sa.String) for i in range(300)))
    assert RowInserter(wide).batch == 3  # 999 parameters at most
    assert RowInserter(table, max_batch=0).batch == 1


@pytest.mark.parametrize("wanted", [0, 1, 3, 5, 8, 9, 40])
def test_key_lookup_finds_exactly_the_stored_keys(
    scratch: tuple[sa.Engine, sa.Table], wanted: int
) -> None:
    """Lists are padded to a power of two and split at ``size``: no row twice, none lost."""
    engine, table = scratch
    stored = [(f"k{i}", 1, None, True) for i in range(0, 60, 2)]
    with engine.begin() as conn:
        RowInserter(table)(conn, stored)
    keys = [f"k{i}" for i in range(wanted)]  # every other one is stored
    lookup = KeyLookup(table, "k", size=8)
    with engine.connect() as conn:
        found = lookup(conn, keys)
    assert sorted(r[0] for r in found) == sorted(k for k in keys if int(k[1:]) % 2 == 0)
    assert all(len(r) == 4 for r in found)


def record(state: bytes) -> StoredRecord:
    return StoredRecord(7, "s", 3, "agent.merged", state, seq=9, prev_hash=b"p", hash=b"h")


def reference(r: StoredRecord) -> RecordedEvent:
    """``from_record`` as it was written with ``state_parts``."""
    parts = state_parts(r.state)
    if parts is None:
        schema, ts, key_id, sig, payload = 0, 0, "", b"", b""
    else:
        schema, ts, raw, sig, payload = parts
        key_id = raw.hex()
    return RecordedEvent(
        r.position, r.seq, r.stream, r.version, r.type, schema, ts, key_id, sig, payload,
        r.prev_hash, r.hash,
    )  # fmt: skip


@pytest.mark.parametrize(
    "state",
    [
        b"\x01" + bytes(range(8)) + b"\xaa" * 64 + b"\x00\x02" + (-5).to_bytes(8, "big", signed=True)
        + b"\x81\xa1a\x01",
        b"\x01" + b"\x00" * (HEADER_LEN - 1),  # header only, empty payload
        b"\x01" + b"\x00" * (HEADER_LEN - 2),  # one byte short
        b"\x02" + b"\x00" * 100,  # another format
        b"",
    ],
)  # fmt: skip
def test_from_record_opens_events_as_state_parts_does(state: bytes) -> None:
    assert RecordedEvent.from_record(record(state)) == reference(record(state))


def test_recorded_event_payload_still_decodes(ledger: Ledger) -> None:
    ledger.append([NewEvent("agent/a", ev.AgentForked(agent_id="a", branch="b"))])
    forked = [e for e in ledger.read() if e.type == "agent.forked"]
    assert forked[0].payload() == ev.AgentForked(agent_id="a", branch="b")


def amend(stream: str, version: int, model: str, *, origin: Origin | None = None) -> NewEvent:
    """An amendment appended to stream ``raw`` (or ``agent/a`` for model ``n``)."""
    payload = ev.CostAmended(
        agent_id="a", supersedes_stream=stream, supersedes_version=version, provider="p",
        model=model, micro_cents=len(model), origin=origin,
    )  # fmt: skip
    return NewEvent("agent/a" if model == "n" else "raw", payload)


def raw_events() -> list[NewEvent]:
    """Events no command would append, in an order that crosses any page split.

    ``agent/a``: 1 fork, 2 cost ``m``, 3 cost ``m`` (imported), 4 amends 2, 5 done;
    ``raw``: 1 amends 2 again (ignored), 2 amends 3, 3 amends raw:2, 4 amends nothing.
    """
    imported = Origin(source="import", occurred_at_us=3 * DAY_US + 5)
    later = Origin(source="import", occurred_at_us=9 * DAY_US)
    usage = TokenUsage(input_tokens=1, reasoning_tokens=0)
    cost = ev.CostRecorded
    return [
        NewEvent("agent/a", ev.AgentForked(agent_id="a", branch="b", origin=imported)),
        NewEvent("agent/a", cost(agent_id="a", provider="p", model="m", micro_cents=5)),
        NewEvent("agent/b", ev.AgentForked(agent_id="a", branch="again")),  # duplicate id
        NewEvent(
            "agent/a",
            cost(
                agent_id="a", provider="p", model="m", micro_cents=7, usage=usage, origin=imported
            ),
        ),
        amend("agent/a", 2, "n"),
        NewEvent("agent/a", ev.AgentCompleted(agent_id="a", summary="s")),
        amend("agent/a", 2, "x"),
        amend("agent/a", 3, "y", origin=later),
        amend("raw", 2, "z"),
        amend("nowhere", 0, "q"),
        NewEvent("agent/a", ev.AgentMerged(agent_id="a", origin=imported)),
        NewEvent("skill/k", ev.SkillInvoked(skill_name="k", success=True, origin=imported)),
        NewEvent("agent/a", ev.OutcomeRecorded(agent_id="a", outcome="partial", stub_count=2)),
    ]


def rows_and_digests(url: str, ledger: Ledger, page_size: int) -> tuple[object, object]:
    engine = ProjectionEngine(url, ledger.store, default_projections(), page_size=page_size)
    try:
        engine.rebuild()
        digests = {name: engine.digest(name) for name in engine.projections}
        table = engine.tables["costs"][0]
        with sa.create_engine(url).connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.position)).all()
        return [tuple(r) for r in rows], digests
    finally:
        engine.close()


def test_raw_costs_fold_the_same_in_any_page_size(store_url: str, ledger: Ledger) -> None:
    """A page with no amendment takes the insert-only path; one with amendments looks
    targets up. Every split gives the rows worked out by hand below."""
    ledger.append(raw_events())
    rows, digests = rows_and_digests(store_url, ledger, 25_000)
    for page_size in (1, 2, 3, 5):
        assert rows_and_digests(store_url, ledger, page_size) == (rows, digests)
    by_model = {r[5]: r for r in rows}
    assert set(by_model) == {"m", "n", "x", "y", "z", "q"}
    first, second = (r for r in rows if r[5] == "m")
    assert (first[16], first[17]) == ("superseded", "agent/a:4")  # first amendment wins
    assert (by_model["x"][16], by_model["q"][16]) == ("ignored", "ignored")
    assert by_model["n"][14:18] == (first[14], first[15], "current", None)  # the target's time
    assert by_model["n"][18:20] == first[18:20] == (None, None)  # its session and project
    assert second[7:12] == (1, None, None, None, 0)  # usage, NULL where unknown
    assert second[14:18] == (3 * DAY_US + 5, "1970-01-04", "superseded", "raw:2")  # imported
    # an amendment inherits its target's time, not its own origin's, along the chain
    assert by_model["y"][14:18] == (second[14], second[15], "superseded", "raw:3")
    assert by_model["z"][14:18] == (second[14], second[15], "current", None)


def test_costs_apply_and_apply_page_agree(ledger: Ledger, store_url: str) -> None:
    """``apply`` one event at a time is ``apply_page`` of one event."""
    ledger.append(raw_events())
    recorded = [e for e in ledger.read() if e.type in Costs.event_types]
    tables: dict[str, list[tuple[object, ...]]] = {}
    for how in ("apply", "page"):
        costs = Costs(f"costs_{how}_{uuid.uuid4().hex[:8]}")
        metadata = sa.MetaData()
        table, _faults = costs.define(metadata)
        engine = sa.create_engine(store_url)
        metadata.create_all(engine)
        with engine.begin() as conn:
            if how == "apply":
                for event in recorded:
                    costs.apply(conn, event)
            else:
                costs.apply_page(conn, recorded)
        with engine.connect() as conn:
            tables[how] = [tuple(r) for r in conn.execute(sa.select(table).order_by("position"))]
        engine.dispose()
    assert tables["apply"] == tables["page"] and len(tables["page"]) == 7
