"""SIGKILL in the middle of appending: the log still verifies and holds no partial batch.

A child process appends batches of ``BATCH`` events in a loop and reports each
commit; once it has committed at least one, the parent waits a random moment and
kills it with SIGKILL, wherever it is (sealing, inserting, committing). Every batch
is one transaction, so afterwards the number of events after the genesis is an
exact multiple of ``BATCH``, chain rows match event rows, and ``verify_store``
finds nothing. Repeated a few times on the same store, on both stores.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from kei import Ledger, SigningKey
from kei.app.ledger.verification import verify_store

pytestmark = pytest.mark.slow

BATCH = 2000
ROUNDS = 4

CHILD = r"""
import sys
from kei import Ledger, NewEvent, SigningKey
from kei.domain import events

url, seed, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
ledger = Ledger.open(url, key=SigningKey(bytes.fromhex(seed), name="default"))
n = 0
while True:
    ledger.append([
        NewEvent(f"agent-{i % 7}", events.CostRecorded(
            agent_id=f"agent-{i % 7}", provider="p", model="m", micro_cents=n + i + 1))
        for i in range(batch)
    ])
    n += batch
    print("committed", n, flush=True)
"""


def append_until_killed(url: str, key: SigningKey, rng: random.Random) -> int:
    """Run the child, SIGKILL it a random moment after its first commit; its commits."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, key.seed.hex(), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("committed"), proc.stderr.read() if proc.stderr else first
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return 1 + out.count("committed")


# The killed child's server session outlives it: a COMMIT already sent still finishes,
# and a transaction in flight is rolled back only when the server notices the closed
# socket. Counting before then races the server, not kei.
_BUSY_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
)


def _wait_for_killed_sessions(ledger: Ledger) -> None:
    deadline = time.monotonic() + 60
    while ledger.store.select(_BUSY_SESSIONS, ())[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_sigkill_mid_append_leaves_whole_batches_only(
    store: str,
    request: pytest.FixtureRequest,
    make_ledger: Callable[[str], Ledger],
    key: SigningKey,
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url"))
    ledger = make_ledger(url)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    committed = 0
    for round_ in range(ROUNDS):
        committed += append_until_killed(url, key, rng)
        if store == "postgres":
            _wait_for_killed_sessions(ledger)
        where = f"seed {seed}, round {round_}"
        events_after_genesis = ledger.store.count() - 1
        assert events_after_genesis % BATCH == 0, where
        assert events_after_genesis >= committed * BATCH, where
        assert ledger.store.chain_size() == events_after_genesis + 1, where
        report = verify_store(ledger.store)
        assert report.ok, (where, [f.to_dict() for f in report.findings[:5]])
        assert report.events_checked == events_after_genesis + 1, where
