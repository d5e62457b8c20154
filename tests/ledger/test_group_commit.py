"""Group commit: batches from many threads share transactions, each caller gets its own
events (or its own error), and the chain verifies."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.app.ledger.appending import NewEvent
from kei.app.ledger.group_commit import GroupLedger, _groups, _Pending, signing_as
from kei.app.ledger.ledger import Ledger
from kei.domain.events import AgentForked
from kei.domain.log.keys import SigningKey
from kei.errors import ConcurrencyError

KEYS = [SigningKey(bytes([i]) * 32) for i in (1, 2)]


def _forked(stream: str, expected: int | None = None) -> NewEvent:
    return NewEvent(stream, AgentForked(agent_id=stream, branch="b"), expected)


@given(st.lists(st.tuples(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=3),
                          st.sampled_from([0, 1])), max_size=30),
       st.integers(1, 8))  # fmt: skip
def test_groups_keep_order_keys_disjoint_streams_and_the_cap(
    batches: list[tuple[list[str], int]], cap: int
) -> None:
    pending = [_Pending([_forked(s) for s in streams], KEYS[k]) for streams, k in batches]
    groups = _groups(pending, cap)
    assert [p for g in groups for p in g] == pending
    for g in groups:
        assert len({id(p.key) for p in g}) == 1
        seen: set[str] = set()
        for p in g:
            assert seen.isdisjoint(p.streams)
            seen |= p.streams
        assert len(g) == 1 or sum(len(p.batch) for p in g) <= cap


def _run_all(jobs: list[Callable[[], object]]) -> list[object]:
    out: list[object] = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = jobs[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.fixture
def grouped(sqlite_url: str, key: SigningKey) -> GroupLedger:
    with Ledger.open(sqlite_url, key=key, create=True) as ledger:
        ledger.init("t")
    opened = GroupLedger.open_grouped(sqlite_url, key=key, window=0.05)
    yield opened  # type: ignore[misc]
    opened.close()


def test_concurrent_batches_share_transactions_and_a_stale_one_fails_alone(
    grouped: GroupLedger,
) -> None:
    grouped.append([_forked("agent/taken", 0)])
    jobs: list[Callable[[], object]] = [
        (lambda i=i: grouped.append([_forked(f"agent/{i}", 0)])) for i in range(20)
    ]
    jobs.append(lambda: grouped.append([_forked("agent/taken", 0)]))  # stale: version 1 now
    results = _run_all(jobs)
    assert isinstance(results[-1], ConcurrencyError)
    positions = [r[0].position for r in results[:-1]]  # type: ignore[index]
    assert len(set(positions)) == 20
    assert grouped.groups >= 1
    assert grouped.verify().ok


def test_each_batch_is_signed_by_its_callers_key(grouped: GroupLedger, key: SigningKey) -> None:
    other = SigningKey.generate(name="other")
    grouped.add_key(other)

    def as_other() -> object:
        with signing_as(other) as committed:
            grouped.append([_forked("agent/o")])
        return committed

    results = _run_all([as_other, lambda: grouped.append([_forked("agent/s")])])
    assert results[0][0].key_id == other.key_id_hex  # type: ignore[index]
    assert results[1][0].key_id == key.key_id_hex  # type: ignore[index]
    assert grouped.verify().ok
