"""Many processes appending to one store: the chain never forks, skips or loses an event.

Each writer is a separate Python process (``subprocess``), opens its own ``Ledger``
with the same key, waits for a common start signal, then appends batches to its
own streams and to one shared stream without ``expected_version``, so clashes on
the shared stream are retried by the ledger. Afterwards every event is present
exactly once, positions are unique, chain sequence numbers run 0..n-1 without a
gap, every stream's versions run 1..k, and ``verify_store`` finds nothing.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable

import pytest

from kei import ConcurrencyError, Ledger, NewEvent, SigningKey
from kei.app.ledger.verification import verify_store
from kei.domain import events

pytestmark = pytest.mark.slow

BATCHES = 25
BATCH_SIZE = 20
SHARED_PER_BATCH = 2
SHARED = "shared"

WORKER = r"""
import json, logging, sys
from kei import Ledger, NewEvent, SigningKey
from kei.domain import events

url, seed, wid, batches, size, shared = sys.argv[1:7]
batches, size, shared = int(batches), int(size), int(shared)
clashes = 0

class Count(logging.Handler):
    def emit(self, record):
        global clashes
        clashes += 1

log = logging.getLogger("kei.app.ledger.ledger")
log.setLevel(logging.DEBUG)
log.addHandler(Count())
ledger = Ledger.open(url, key=SigningKey(bytes.fromhex(seed), name="default"))
print("ready", flush=True)
sys.stdin.readline()
for b in range(batches):
    batch = []
    for i in range(size):
        n = b * size + i
        stream = "shared" if i < shared else f"w{wid}-s{n % 3}"
        batch.append(NewEvent(stream, events.CostRecorded(
            agent_id=f"w{wid}", provider="p", model="m", micro_cents=n + 1)))
    ledger.append(batch)
ledger.close()
print(json.dumps({"worker": wid, "appended": batches * size, "clashes": clashes}), flush=True)
"""


def run_writers(url: str, key: SigningKey, writers: int) -> list[dict[str, int]]:
    """Start ``writers`` processes, release them together, collect their reports."""
    args = [str(BATCHES), str(BATCH_SIZE), str(SHARED_PER_BATCH)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, key.seed.hex(), str(w), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def check_log(ledger: Ledger, expected_events: int) -> None:
    """Every event once, unique positions, contiguous chain and stream versions."""
    recorded = list(ledger.read())
    assert len(recorded) == expected_events
    assert ledger.store.count() == expected_events
    positions = [e.position for e in recorded]
    assert len(set(positions)) == len(positions)
    assert positions == sorted(positions)
    assert [e.seq for e in recorded] == list(range(expected_events))
    for before, after in itertools.pairwise(recorded):
        assert after.prev_hash == before.hash
    versions: dict[str, list[int]] = defaultdict(list)
    for e in recorded:
        versions[e.stream].append(e.version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), stream
    report = verify_store(ledger.store)
    assert report.ok, [f.to_dict() for f in report.findings]
    assert report.events_checked == expected_events
    assert report.chain_size == expected_events


@pytest.mark.parametrize(
    ("store", "writers"), [("sqlite", 4), ("postgres", 8)], ids=["sqlite-4", "postgres-8"]
)
def test_concurrent_writers_keep_one_unbroken_chain(
    store: str,
    writers: int,
    request: pytest.FixtureRequest,
    make_ledger: Callable[[str], Ledger],
    key: SigningKey,
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url"))
    ledger = make_ledger(url)
    reports = run_writers(url, key, writers)
    total = writers * BATCHES * BATCH_SIZE
    assert sum(r["appended"] for r in reports) == total
    check_log(ledger, 1 + total)
    shared = ledger.read_stream(SHARED)
    assert len(shared) == writers * BATCHES * SHARED_PER_BATCH


def _merge(agent: str, expected: int) -> NewEvent:
    return NewEvent(agent, events.AgentMerged(agent_id=agent), expected_version=expected)


def test_same_expected_version_twice_one_wins(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    first = make_ledger(store_url)
    second = Ledger.open(store_url, key=key)
    try:
        first.append([NewEvent("a", events.AgentForked(agent_id="a", branch="main"))])
        first.append([_merge("a", 1)])
        count, head = first.store.count(), first.store.chain_size()
        with pytest.raises(ConcurrencyError, match="taken by another writer"):
            second.append([_merge("a", 1)])
        assert (first.store.count(), first.store.chain_size()) == (count, head)
        assert [e.version for e in first.read_stream("a")] == [1, 2]
        assert verify_store(first.store).ok
    finally:
        second.close()


def race_once(ledgers: list[Ledger], version: int) -> list[str]:
    """Both ledgers append at ``expected_version=version`` at the same moment."""
    barrier = threading.Barrier(len(ledgers))
    outcomes: list[str] = []

    def race(ledger: Ledger) -> None:
        barrier.wait()
        try:
            ledger.append([_merge("race", version)])
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("lost")

    threads = [threading.Thread(target=race, args=(led,)) for led in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sorted(outcomes)


def test_racing_expected_versions_exactly_one_winner_each_round(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    ledgers = [make_ledger(store_url), Ledger.open(store_url, key=key)]
    rounds = 10
    try:
        for version in range(rounds):
            assert race_once(ledgers, version) == ["lost", "won"]
        stream = ledgers[0].read_stream("race")
        assert [e.version for e in stream] == list(range(1, rounds + 1))
        assert ledgers[0].store.count() == 1 + rounds
        assert verify_store(ledgers[0].store).ok
    finally:
        ledgers[1].close()


def test_stale_stream_end_is_redone_under_the_lock(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    """A writer whose idea of a stream's end is stale clashes once, then appends
    at the true end inside the store's write lock; nothing is lost or doubled."""
    mine = make_ledger(store_url)
    other = Ledger.open(store_url, key=key)
    try:
        mine.append([NewEvent("s", events.AgentForked(agent_id="s", branch="main"))])
        other.append([NewEvent("s", events.AgentMerged(agent_id="s"))])
        recorded = mine.append([NewEvent("s", events.AgentMerged(agent_id="s"))] * 3)
        assert [e.version for e in recorded] == [3, 4, 5]
        assert [e.version for e in mine.read_stream("s")] == [1, 2, 3, 4, 5]
        check_log(mine, 6)
    finally:
        other.close()
