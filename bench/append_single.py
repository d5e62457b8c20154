"""Append one event per commit on SQLite with synchronous=FULL: kei vs the raw limit.

- kei: ``Ledger.append([event])`` per event (seal, version bookkeeping, the chain
  row, one durable transaction).
- raw limit: msgspec-encode + sha256 chain + PyNaCl sign + one INSERT and COMMIT
  per event into one plain table (WAL, synchronous=FULL: an fsync per commit).

Target: kei >= 0.8 x raw. Both are bound by the disk's fsync rate, so this figure
moves with the other work on the machine more than the CPU-bound ones.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    timed,
)
from kei.app.ledger.ledger import NewEvent


def run_kei(evs: Sequence[NewEvent]) -> float:
    with scratch_dir("append-single-kei") as tmp:
        ledger = kei_ledger(f"sqlite:///{tmp / 'kei.db'}")

        def go() -> int:
            for event in evs:
                ledger.append([event])
            return len(evs)

        try:
            return timed(go)
        finally:
            ledger.close()


def run_raw(evs: Sequence[NewEvent]) -> float:
    raws = raw_events(evs)
    with scratch_dir("append-single-raw") as tmp:
        conn = raw_sqlite(tmp / "raw.db", "FULL")
        chain = RawChain()

        def go() -> int:
            for i in range(len(raws)):
                raw_sqlite_append(conn, chain, raws[i : i + 1])
            return len(raws)

        try:
            return timed(go)
        finally:
            conn.close()


def main() -> None:
    args = parse_args(__doc__ or "", default_events=2_000)
    evs = new_events(args.events)
    rates = median_rates({"raw": lambda: run_raw(evs), "kei": lambda: run_kei(evs)}, args.reps)
    print(
        f"append, one event per commit, SQLite FULL, {args.events:,} events, median of {args.reps}"
    )
    report(
        [
            Figure(
                "append-single",
                "kei 1 event/commit vs raw 1 row/commit (FULL)",
                rates["kei"],
                rates["raw"],
                0.8,
            )
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
