"""Append in batches of 100 on SQLite (synchronous=FULL): kei vs the raw limit vs eventsourcing.

- kei: ``Ledger.append`` with 100 ``NewEvent`` per call (sign, chain, two tables,
  per-stream versions with UNIQUE(stream, version), one transaction per call).
- raw limit: msgspec-encode + sha256 chain + PyNaCl sign + ``executemany`` into one
  plain table, 1,000 rows per transaction (the issue's anchor, 41k events/s in
  ``limits.md``).
- eventsourcing: a stock ``Application`` on its SQLite module, no signing, no
  chain, 100 events per ``save()`` over the same 1,000 streams.

Target: kei >= 0.75 x raw.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from common import (
    Figure,
    RawChain,
    kei_ledger,
    median_rates,
    new_events,
    parse_args,
    raw_events,
    raw_sqlite,
    raw_sqlite_append,
    report,
    scratch_dir,
    shaped_sqlite_append,
    timed,
)
from kei.app.ledger.ledger import NewEvent

KEI_BATCH = 100
RAW_TXN = 1000


class Stream(Aggregate):
    """One stream per agent, as kei has."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create_id(cls, name: str) -> UUID:
        return uuid5(NAMESPACE_URL, name)

    @event("Recorded")
    def record(self, type_name: str, data: dict[str, Any]) -> None:
        del type_name, data


def run_kei(evs: Sequence[NewEvent], *, parallel: bool = False) -> float:
    with scratch_dir("append-batch-kei") as tmp:
        ledger = kei_ledger(f"sqlite:///{tmp / 'kei.db'}", parallel=parallel)
        chunks = [evs[i : i + KEI_BATCH] for i in range(0, len(evs), KEI_BATCH)]
        if parallel:
            ledger._batch_signer(ledger._signer()).sign_many([b""] * 64)  # start the helper

        def go() -> int:
            for chunk in chunks:
                ledger.append(chunk)
            return len(evs)

        try:
            return timed(go)
        finally:
            ledger.close()


def run_raw(evs: Sequence[NewEvent]) -> float:
    raws = raw_events(evs)
    with scratch_dir("append-batch-raw") as tmp:
        conn = raw_sqlite(tmp / "raw.db")
        chain = RawChain()

        def go() -> int:
            for i in range(0, len(raws), RAW_TXN):
                raw_sqlite_append(conn, chain, raws[i : i + RAW_TXN])
            return len(raws)

        try:
            return timed(go)
        finally:
            conn.close()


def run_shaped(evs: Sequence[NewEvent]) -> float:
    """The raw loop at kei's batch size and table shape: what kei adds is only glue."""
    raws = raw_events(evs)
    with scratch_dir("append-batch-shaped") as tmp:
        conn = raw_sqlite(tmp / "shaped.db", shaped=True)
        chain = RawChain()

        def go() -> int:
            for i in range(0, len(raws), KEI_BATCH):
                shaped_sqlite_append(conn, chain, raws[i : i + KEI_BATCH])
            return len(raws)

        try:
            return timed(go)
        finally:
            conn.close()


def run_eventsourcing(evs: Sequence[NewEvent]) -> float:
    with scratch_dir("append-batch-es") as tmp:
        app = Application(env=_es_env(tmp / "es.db"))
        streams = {name: Stream(name) for name in sorted({e.stream for e in evs})}
        app.save(*streams.values())  # creating the aggregates is not timed
        work = [(e.stream, _type_name(e), msgspec.to_builtins(e.payload)) for e in evs]

        def go() -> int:
            for i in range(0, len(work), KEI_BATCH):
                touched = {}
                for stream, type_name, data in work[i : i + KEI_BATCH]:
                    agg = streams[stream]
                    agg.record(type_name, data)
                    touched[stream] = agg
                app.save(*touched.values())
            return len(work)

        try:
            return timed(go)
        finally:
            app.close()


def _type_name(e: NewEvent) -> str:
    return type(e.payload).__name__


def _es_env(path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "IS_SNAPSHOTTING_ENABLED": "n",
    }


def main() -> None:
    args = parse_args(__doc__ or "", default_events=20_000)
    evs = new_events(args.events)
    os.environ.pop("PERSISTENCE_MODULE", None)
    rates = median_rates(
        {
            "raw": lambda: run_raw(evs),
            "kei": lambda: run_kei(evs),
            "kei2": lambda: run_kei(evs, parallel=True),
            "es": lambda: run_eventsourcing(evs),
            "shaped": lambda: run_shaped(evs),
        },
        args.reps,
    )
    print(f"append, SQLite FULL, {args.events:,} events, median of {args.reps}")
    report(
        [
            Figure(
                "append-batch",
                "kei batches of 100 vs raw 1000-row txns",
                rates["kei"],
                rates["raw"],
                0.75,
            ),
            Figure(
                "append-batch",
                "kei, parallel_signing=True (2 cores), vs raw 1000-row txns (1 core)",
                rates["kei2"],
                rates["raw"],
                0.75,
            ),
            Figure(
                "append-batch",
                "kei vs raw at kei's shape (100-row txns, UNIQUE, chain table)",
                rates["kei"],
                rates["shaped"],
            ),
            Figure(
                "append-batch",
                "kei vs stock eventsourcing (no signing), 100 events/save",
                rates["kei"],
                rates["es"],
            ),
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
