"""CPU time of appends, without the disk: for comparing two versions of kei on a busy machine.

The wall-clock benchmarks (``append_batch.py``, ``append_single.py``) are bound by fsync
and by whatever else holds the cores; this one appends to a SQLite file in ``/dev/shm``
with ``synchronous=OFF`` and counts the process's CPU time, so what it measures is kei's
own work per event. Run two checkouts alternately (``PYTHONPATH=<checkout>/src``) and
compare medians.

    .venv/bin/python bench/append_cpu.py batch 20000
    .venv/bin/python bench/append_cpu.py single 4000
"""

from __future__ import annotations

import sys
import tempfile
import time

from common import new_events
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    evs = new_events(count)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        url = f"sqlite:///{tmp}/kei.db"
        key = SigningKey.generate(name="bench")
        ledger = Ledger.open(url, key=key, create=True, synchronous="OFF")
        ledger.init("bench")
        start = time.process_time()
        if mode == "batch":
            for i in range(0, count, 100):
                ledger.append(evs[i : i + 100])
        else:
            for event in evs:
                ledger.append([event])
        cpu = time.process_time() - start
        ledger.close()
    print(f"{mode}: {count / cpu:.0f} events per CPU-second")


if __name__ == "__main__":
    main()
