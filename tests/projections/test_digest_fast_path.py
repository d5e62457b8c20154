"""The batched state digest gives exactly the bytes of the row-by-row definition.

Digests travel in bundles' manifests, so the fast path (driver rows, one type scan
per batch, one msgpack array per batch minus its header) must never change a byte.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from kei.adapters.readmodels.db import make_engine
from kei.projections.digest import digest_batches, digest_rows, encode_batch, state_digest

Row = tuple[Any, ...]

VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-40, max_value=300),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.none(),
    st.booleans(),
    st.binary(max_size=8).map(memoryview),
    st.binary(max_size=8).map(bytearray),
)


def split(rows: Sequence[Row], cuts: Sequence[int]) -> list[list[Row]]:
    """``rows`` cut into consecutive batches at the given offsets (empty ones too)."""
    edges = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    return [list(rows[a:b]) for a, b in itertools.pairwise(edges)] + [[]]


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(min_value=0, max_value=6),
    data=st.data(),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
)
def test_batches_digest_as_the_rows_do(width: int, data: st.DataObject, cuts: list[int]) -> None:
    rows = data.draw(st.lists(st.tuples(*[VALUES] * width), max_size=60))
    columns = [f"c{i}" for i in range(width)]
    expected = digest_rows([("t", columns, rows)])
    assert digest_batches([("t", columns, split(rows, cuts))]) == expected


@pytest.mark.parametrize("n", [1, 15, 16, 17, 65535, 65536, 65537])
def test_every_msgpack_array_header_size_is_dropped(n: int) -> None:
    rows = [(i, str(i), None, i % 2 == 0) for i in range(n)]
    assert bytes(encode_batch(rows)) == b"".join(bytes(encode_batch([r])) for r in rows), (
        "a batch must encode as its rows, one by one"
    )
    assert digest_batches([("t", ["a", "b", "c", "d"], [rows])]) == digest_rows(
        [("t", ["a", "b", "c", "d"], rows)]
    )


@pytest.mark.parametrize("bad", [1.5, 2**64, -(2**63) - 1])
def test_unsupported_values_fail_as_the_definition_does(bad: Any) -> None:
    rows = [(1, "a"), (2, bad)]
    with pytest.raises((TypeError, OverflowError)) as slow:
        digest_rows([("t", ["k", "v"], rows)])
    with pytest.raises(slow.type):
        digest_batches([("t", ["k", "v"], [rows])])


def _table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "probe_rows",
        metadata,
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("n", sa.BigInteger, primary_key=True),
        sa.Column("flag", sa.Boolean, nullable=False),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("note", sa.String),
    )


def _reference(conn: sa.Connection, table: sa.Table) -> bytes:
    """The digest as it was defined before the fast path: SQLAlchemy rows, one by one."""
    keys: list[Any] = list(table.primary_key.columns)
    if conn.dialect.name == "postgresql":
        keys = [k.collate("C") if isinstance(k.type, sa.String) else k for k in keys]
    rows = conn.execute(sa.select(table).order_by(*keys)).all()
    return digest_rows([(table.name, [c.name for c in table.columns], rows)])


def test_state_digest_matches_the_definition_on_both_stores(store_url: str) -> None:
    engine = make_engine(store_url)
    metadata = sa.MetaData()
    table = _table(metadata)
    names = ["a", "B", "b", "é", "ä", "Z", "aa", "a b", "", "中"]
    rows = [
        {
            "name": names[i % len(names)],
            "n": i * 7919 % 10_007 - 5000,
            "flag": i % 3 == 0,
            "blob": None if i % 5 == 0 else bytes([i % 256]) * (i % 9),
            "note": None if i % 4 == 0 else f"note {i}",
        }
        for i in range(9_000)
    ]
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(table.insert(), rows)
        with engine.begin() as conn:
            assert state_digest(conn, [table]) == _reference(conn, table)
            assert state_digest(conn, [table]) == state_digest(conn, [table])
    finally:
        with engine.begin() as conn:
            metadata.drop_all(conn)
        engine.dispose()
