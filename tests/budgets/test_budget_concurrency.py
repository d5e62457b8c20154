"""Thresholds cross exactly once under concurrent writers: separate processes record costs
at once against one SQLite file, and one PostgreSQL database, each running the budget
check ``kei cost record`` runs after its write. Afterwards every crossings stream holds
thresholds 50, 80, 100 at versions 1, 2, 3 (a prefix of them), one event each, every one
measured at or past its threshold; nothing the final spend reached is left unrecorded,
and a further ``kei budget check`` appends nothing."""

from __future__ import annotations

import multiprocessing
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from budgets_helpers import Kei, answer, events, record_at
from cli_helpers import in_process
from kei.domain.events.budgets import THRESHOLDS

pytest_plugins = ["budgets_fixtures"]  # kei_home, kei_env and kei

PROCESSES = 4
RECORDS = 8  # per process
AGENTS = ("kid", "grandkid", "other", "root")


def _hammer(kei_env: dict[str, str], agent: str, start: Any) -> list[tuple[int, str]]:
    """One writer process: wait for the others, then record costs as the CLI does."""
    run = in_process(kei_env)
    start.wait()
    done = []
    for _ in range(RECORDS):
        result = run("cost", "record", agent, "--provider", "p", "--model", "m", "--cents",
                     "100", code=None)  # fmt: skip
        done.append((result.exit_code, result.stderr))
    return done


@pytest.mark.slow
def test_concurrent_writers_cross_each_threshold_exactly_once(
    kei: Kei, kei_env: dict[str, str], store_url: str
) -> None:
    total = PROCESSES * RECORDS * 100_000_000  # $32 in all
    kei("budget", "set", "all", "20")  # 50 % at $10, 80 % at $16, 100 % at $20: mid-run
    kei("budget", "set", "tree:root", "12", "--period", "day")  # kid, grandkid, root: $24
    kei("budget", "set", "all", "1000", "--period", "month")  # 3.2 %: never crossed
    kei("budget", "status")  # the seal key exists before the writers race for it
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            jobs = [pool.apply_async(_hammer, (kei_env, AGENTS[i % len(AGENTS)], start))
                    for i in range(PROCESSES)]  # fmt: skip
            results = [r for job in jobs for r in job.get(timeout=600)]
    assert [code for code, _ in results] == [0] * PROCESSES * RECORDS, results
    assert not [err for _, err in results if "not checked" in err], results

    log = events(store_url)
    assert sum(e.payload_data()["micro_cents"] for e in log if e.type == "cost.recorded") == total
    by_stream: dict[str, list[Any]] = defaultdict(list)
    for e in log:
        if e.type == "budget.threshold.crossed":
            by_stream[e.stream].append(e)
    for name, found in by_stream.items():
        assert [e.version for e in found] == list(range(1, len(found) + 1)), name
        data = [e.payload_data() for e in found]
        assert [d["threshold_percent"] for d in data] == list(THRESHOLDS[: len(found)]), name
        for d in data:
            assert d["spent_micro_cents"] * 100 >= d["threshold_percent"] * d["limit_micro_cents"]
    totals = [s for s in by_stream if s.startswith("budget/1/")]
    assert totals == ["budget/1/total"] and len(by_stream["budget/1/total"]) == 3
    assert not [s for s in by_stream if s.startswith("budget/3/")]  # the $1000 month
    said = [line for _, err in results for line in err.splitlines() if "crossed" in line]
    assert len(said) == sum(len(found) for found in by_stream.values())  # each said once

    status = answer(kei("budget", "status", "--json"))["budgets"]
    assert [s["unrecorded"] for s in status] == [[], [], []]
    assert status[0]["spent_micro_cents"] == total and status[0]["crossed"] == [50, 80, 100]
    assert answer(kei("budget", "check", "--json"))["crossings"] == []
    assert kei("verify-chain").exit_code == 0


def _race(url: str, key_file: str, start: Any) -> list[str]:
    """One checker process: measure the budgets (the spend: 120 %, nothing recorded),
    wait until every process has, then append what is due, all at the same moment."""
    from kei.adapters.files.keyfile import load_key
    from kei.app.budgets.check import append_due
    from kei.app.budgets.status import status
    from kei.app.ledger.ledger import Ledger

    with Ledger.open(url, key=load_key(Path(key_file))) as ledger:
        measured = status(ledger)
        start.wait()
        return [c.event for m in measured for c in append_due(ledger, m)]


@pytest.mark.slow
def test_writers_racing_for_the_same_thresholds_append_each_once(
    kei: Kei, store_url: str, kei_home: Path
) -> None:
    """Every process has measured the same spend (120 %) against an empty crossings
    stream, so all of them append 50, 80 and 100 at versions 1 to 3 at once: one batch
    lands, the others lose the version check, read the stream again and find nothing
    left to append. Each crossing is appended, and reported, by exactly one process."""
    kei("budget", "set", "all", "1", "--period", "month")
    kei("budget", "set", "tree:root", "1", "--period", "day")
    record_at(store_url, kei_home, "kid", 120_000_000, time.time_ns() // 1_000)  # no check ran
    key_file = str(kei_home / "keys" / "default.key")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            jobs = [pool.apply_async(_race, (store_url, key_file, start))
                    for _ in range(PROCESSES)]  # fmt: skip
            reported = [name for job in jobs for name in job.get(timeout=600)]
    crossed = [(e.stream, e.version, e.payload_data()["threshold_percent"])
               for e in events(store_url) if e.type == "budget.threshold.crossed"]  # fmt: skip
    assert len(crossed) == 6 and len(set(crossed)) == 6
    for stream_name in {s for s, _, _ in crossed}:
        assert [(v, t) for s, v, t in crossed if s == stream_name] == [(1, 50), (2, 80), (3, 100)]
    assert sorted(reported) == sorted(f"{s}:{v}" for s, v, _ in crossed)  # each by one process
    assert answer(kei("budget", "check", "--json"))["crossings"] == []
