"""CPU time of ``verify-chain`` in one process, without the disk: for comparing two
versions of kei (e.g. before and after signed heads) on a busy machine.

Builds a ledger in ``/dev/shm`` with ``synchronous=OFF`` from transactions of BATCH
events, then times ``verify_store`` (one process, full and ``--quick``) in the
process's CPU time. Run two checkouts alternately (``PYTHONPATH=<checkout>/src``).

    .venv/bin/python bench/verify_cpu.py 1 5000      # one event per transaction
    .venv/bin/python bench/verify_cpu.py 100 20000   # batches of 100
"""

from __future__ import annotations

import sys
import tempfile
import time

from common import new_events
from kei.app.ledger.ledger import Ledger
from kei.app.ledger.verification import verify_store
from kei.domain.log.keys import SigningKey


def main() -> None:
    batch, count = int(sys.argv[1]), int(sys.argv[2])
    evs = new_events(count)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        url = f"sqlite:///{tmp}/kei.db"
        ledger = Ledger.open(url, key=SigningKey.generate(name="bench"), create=True,
                             synchronous="OFF")  # fmt: skip
        ledger.init("bench")
        for i in range(0, count, batch):
            ledger.append(evs[i : i + batch])
        figures = []
        for quick in (False, True):
            start = time.process_time()
            report = verify_store(ledger.store, quick=quick)
            cpu = time.process_time() - start
            assert report.ok, report.findings[:3]
            figures.append(f"{'quick' if quick else 'full'}: {count / cpu:.0f} events/CPU-s")
        ledger.close()
    print(f"batch {batch}: " + ", ".join(figures))


if __name__ == "__main__":
    main()
