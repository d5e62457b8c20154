"""Rebuilding projections from the log, beside a loop that only reads and decodes.

kei: ``ProjectionEngine.rebuild()`` of every shipped projection (today
``event_counts``; the agent-ledger read models join as they land), which reads the
log page by page, checks every link and hash, folds, and commits each page with its
position. Raw: the same pages read and every payload decoded, nothing checked or
written. Peak memory is this process's ``ru_maxrss``. The ledger is the one
``verify_chain.py`` caches under /tmp (built on first use).

    .venv/bin/python bench/projection_rebuild.py --events 1000000 --reps 1
"""

from __future__ import annotations

import resource
import sqlite3
import time

from common import Figure, parse_args, report
from kei.adapters.projection_engine import ProjectionEngine
from kei.adapters.store import open_store
from kei.adapters.store.base import iter_all
from kei.domain.recorded import RecordedEvent
from kei.projections.registry import default_projections
from verify_chain import CACHE, cached_ledger


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
    args = parse_args(__doc__ or "", default_events=1_000_000)
    source = cached_ledger(args.events)
    work = CACHE / f"projections-{args.events}.db"
    work.unlink(missing_ok=True)
    with sqlite3.connect(source.removeprefix("sqlite:///")) as src, sqlite3.connect(work) as dst:
        src.backup(dst)  # includes whatever is still in the WAL
    url = f"sqlite:///{work}"
    raw = max(decode_rate(url) for _ in range(args.reps))
    kei = max(rebuild_rate(url) for _ in range(args.reps))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"projection rebuild on {args.events:,} events (SQLite), best of {args.reps}")
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
