"""One PostgreSQL writer, one process: wall time and CPU time of appends, for comparing
two versions of kei (run checkouts alternately with ``PYTHONPATH=<checkout>/src``).

Uses a throwaway database on ``KEI_BENCH_POSTGRES_URL`` (default
postgresql://postgres@127.0.0.1:5432/postgres), dropped afterwards.

    .venv/bin/python bench/append_pg_cpu.py single 1500
    .venv/bin/python bench/append_pg_cpu.py batch 20000
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import psycopg

from common import new_events
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey

ADMIN = os.environ.get("KEI_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    db = "kei_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    try:
        url = ADMIN.rsplit("/", 1)[0] + "/" + db
        evs = new_events(count)
        ledger = Ledger.open(url, key=SigningKey.generate(name="bench"), create=True)
        ledger.init("bench")
        cpu, wall = time.process_time(), time.perf_counter()
        if mode == "batch":
            for i in range(0, count, 100):
                ledger.append(evs[i : i + 100])
        else:
            for event in evs:
                ledger.append([event])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        ledger.close()
        print(f"{mode}: {count / wall:.0f} events/s wall, {count / cpu:.0f} events/CPU-s")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {db} WITH (FORCE)")


if __name__ == "__main__":
    main()
