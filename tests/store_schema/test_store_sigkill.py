"""SIGKILL during a store step of ``kei migrate up``: the store keeps the old version and
none of the step's changes; the next run does the step once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kei.adapters.store.schema import StoreStep, sql_step
from kei.adapters.store.versioned import Versioned
from kei.app.ledger.ledger import Ledger
from kei.app.migrate.own_store import own_up
from kei.domain.events.store_schema import STORE_STREAM
from kei.domain.log.keys import SigningKey
from kei.projections.registry import default_projections

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from kei.adapters.store.schema import StoreStep
    from kei.adapters.store.versioned import Versioned
    from kei.app.ledger.ledger import Ledger
    from kei.app.migrate.own_store import own_up
    from kei.domain.log.keys import SigningKey
    from kei.projections.registry import default_projections

    url, marker = sys.argv[1], Path(sys.argv[2])

    def slow(conn):
        conn.execute("CREATE TABLE kei_step_probe (x integer)")
        marker.touch()
        time.sleep(120)

    Versioned.store_steps = (StoreStep(2, "slow", slow, slow),)
    ledger = Ledger.open(url, key=SigningKey.generate(name="k"))
    own_up(ledger, default_projections)
    """
)


def test_sigkill_during_a_step_leaves_the_old_version(
    store_url: str,
    make_ledger: Callable[[str], Ledger],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: SigningKey,
) -> None:
    make_ledger(store_url).close()
    marker = tmp_path / "in-step"
    child = subprocess.Popen([sys.executable, "-c", CHILD, store_url, str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child ended before its step"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    ledger = Ledger.open(store_url)
    try:
        assert ledger.store.stored_schema_version() == 1  # type: ignore[attr-defined]
        probe = "SELECT count(*) FROM kei_events WHERE topic = 'x'"
        assert ledger.store.select(probe) == [(0,)]
    finally:
        ledger.close()
    step = sql_step("CREATE TABLE kei_step_probe (x integer)")  # fails if the kill left it
    monkeypatch.setattr(Versioned, "store_steps", (StoreStep(2, "again", step, step),))
    again = Ledger.open(store_url, key=key)
    try:
        report = own_up(again, default_projections)
        assert [(m.from_version, m.to_version) for m in report.migrated] == [(1, 2)]
        assert len(again.read_stream(STORE_STREAM)) == 1
    finally:
        again.close()
