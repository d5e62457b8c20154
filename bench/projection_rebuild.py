"""Rebuilding projections from the log, beside a loop that only reads and decodes.

kei: ``ProjectionEngine.rebuild()`` of every shipped projection (``event_counts``,
``agents``, ``costs``, ``skills``), which reads the log page by page, checks every
link and hash, folds, and commits each page with its position. Raw: the same events
read and every payload decoded, nothing checked or written. Peak memory is this
process's ``ru_maxrss``. The ledger is ``agent_ledger.py``'s: 100,000 agents with
their lifecycles, costs, outcomes and skill uses, about 1,080,000 events (built once
and cached under /tmp).

    .venv/bin/python bench/projection_rebuild.py --agents 100000 --reps 1
"""

from __future__ import annotations

import resource
import sqlite3
import time

from agent_ledger import cached_agent_ledger
from common import Figure, parse_args, report
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.adapters.store import open_store
from kei.adapters.store.base import iter_all
from kei.domain.log.recorded import RecordedEvent
from kei.projections.registry import default_projections


def decode_rate(url: str) -> float:
    store = open_store(url)
    try:
        start, n = time.perf_counter(), 0
        for record in iter_all(store):
            RecordedEvent.from_record(record).payload_data()
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        store.close()


def rebuild_rate(url: str) -> float:
    store = open_store(url)
    engine = ProjectionEngine(url, store, default_projections())
    try:
        start = time.perf_counter()
        n = engine.rebuild()
        return n / (time.perf_counter() - start)
    finally:
        engine.close()
        store.close()


def main() -> None:
    args = parse_args(__doc__ or "", default_events=0, agents={"type": int, "default": 100_000})
    source = cached_agent_ledger(args.agents)
    work = source.with_name(f"projections-{args.agents}.db")
    work.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(work) as dst:
        src.backup(dst)  # includes whatever is still in the WAL
    url = f"sqlite:///{work}"
    raw = max(decode_rate(url) for _ in range(args.reps))
    kei = max(rebuild_rate(url) for _ in range(args.reps))
    store = open_store(url)
    events = store.count()
    store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"projection rebuild on {events:,} events (SQLite), best of {args.reps}")
    report(
        [
            Figure("projections", "rebuild all projections vs read+decode", kei, raw),
            Figure("projections", "rebuild events/s", kei, None, 50_000.0),
            Figure(
                "projections", "peak memory, this process", peak_mb, None, 200.0, "MB", higher=False
            ),
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
