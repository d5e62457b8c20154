"""Inclusion-proof time on PostgreSQL: a throwaway database of N events, 50 proofs.

    .venv/bin/python bench/proof_pg.py 1000000

Builds the log with ``new_events`` in batches of 500 (``KEI_BENCH_POSTGRES_URL`` names
the server), fills the stored subtree hashes with one proof, then times
``prove_inclusion`` (what ``kei prove inclusion`` calls) at 50 random positions and
prints the median and the number of queries one proof makes. The database is dropped.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from common import PG_URL, new_events
from kei.app.ledger.ledger import Ledger
from kei.app.ledger.proving import prove_inclusion
from kei.domain.log.keys import SigningKey


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    name = "kei_proof_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        ledger = Ledger.open(url, key=SigningKey.generate(name="bench"), create=True)
        ledger.init("bench")
        evs = new_events(count)
        for i in range(0, count, 500):
            ledger.append(evs[i : i + 500])
        store, queries = ledger.store, [0]
        select = store.select

        def counted(*args: Any, **kwargs: Any) -> Any:
            queries[0] += 1
            return select(*args, **kwargs)

        store.select = counted  # type: ignore[method-assign]
        prove_inclusion(store, ledger.ledger_id, 1)  # fills the stored subtree hashes
        times = []
        for _ in range(50):
            queries[0] = 0
            start = time.perf_counter()
            prove_inclusion(store, ledger.ledger_id, random.randint(1, count))
            times.append(time.perf_counter() - start)
        print(f"{count} events: inclusion proof {statistics.median(times) * 1000:.2f} ms "
              f"median of 50, {queries[0]} queries each")  # fmt: skip
        ledger.close()
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
