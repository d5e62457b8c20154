"""The read path's fast chain check agrees with the one-by-one checks of verify.

``chained_prefix`` is what projections use to trust what they read; it must stop at
exactly the first row that ``check_link``/``check_content`` would flag.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kei.domain.log.envelope import GENESIS_PREV, chain_hash, chained_prefix
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link, check_content, check_link


def chain(n: int) -> list[StoredRecord]:
    rows, prev = [], GENESIS_PREV
    for seq in range(n):
        stream, state = f"agent/{seq % 3}", bytes([1]) + seq.to_bytes(4, "big") * 20
        h = chain_hash(prev, seq, seq + 1, stream, seq // 3 + 1, "cost.recorded", state)
        rows.append(
            StoredRecord(seq + 1, stream, seq // 3 + 1, "cost.recorded", state, seq, prev, h)
        )
        prev = h
    return rows


def first_bad(rows: list[StoredRecord]) -> int:
    link = Link(rows[0].position, rows[0].seq, rows[0].hash)
    for i, r in enumerate(rows[1:], start=1):
        if check_link(link, r) or check_content(r):
            return i
        link = Link(r.position, r.seq, r.hash)
    return len(rows)


def mutate(row: StoredRecord, field: str, at: int) -> StoredRecord:
    values = {f: getattr(row, f) for f in StoredRecord.__struct_fields__}
    value = values[field]
    if isinstance(value, bytes):
        i = at % len(value)
        values[field] = value[:i] + bytes([value[i] ^ 0x01]) + value[i + 1 :]
    elif isinstance(value, str):
        values[field] = value + "x"
    else:
        values[field] = value + 1
    return StoredRecord(**values)


FIELDS = ("stream", "version", "type", "state", "seq", "prev_hash", "hash", "position")


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(2, 12),
    where=st.integers(1, 11),
    field=st.sampled_from(FIELDS),
    at=st.integers(0, 200),
)
def test_stops_where_the_slow_checks_do(n: int, where: int, field: str, at: int) -> None:
    rows = chain(n)
    rows[where % n or 1] = mutate(rows[where % n or 1], field, at)
    start = rows[0]
    assert start.seq is not None and start.hash is not None
    assert chained_prefix(rows, 1, start.seq, start.hash) == first_bad(rows)


def test_a_good_chain_passes_whole() -> None:
    rows = chain(50)
    assert chained_prefix(rows, 1, 0, rows[0].hash or b"") == 50
    assert chained_prefix(rows, 50, 49, rows[-1].hash or b"") == 50
