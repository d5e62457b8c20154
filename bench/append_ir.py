"""Instructions per appended event, counted by valgrind: for comparing two versions of
kei on a machine too busy for clocks.

CPU time on a shared 2-vCPU machine varies by ±5-10% between runs; the number of
instructions a process executes does not (to about ±1% here: keys, ids and page
layouts are random). This script is the workload; ``bench/append_ir.sh`` runs it under
``valgrind --tool=callgrind`` with N = 0 and N events and divides the difference, so
start-up and imports cancel out. Same events as ``append_batch.py`` (``new_events``),
SQLite in ``/dev/shm`` with ``synchronous=OFF``, 200 events appended first to warm up.

    bench/append_ir.sh                       # this checkout
    bench/append_ir.sh /tmp/base/src         # another checkout's src, same workload
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import new_events
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey

WARM = 200


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    evs = new_events(WARM + max(count, 1))
    warm, evs = evs[:WARM], evs[WARM : WARM + count]
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        key = SigningKey.generate(name="bench")
        ledger = Ledger.open(f"sqlite:///{tmp}/kei.db", key=key, create=True, synchronous="OFF")
        ledger.init("bench")
        step = 1 if mode == "single" else 100
        for i in range(0, WARM, step):
            ledger.append(warm[i : i + step])
        for i in range(0, count, step):
            ledger.append(evs[i : i + step])
        ledger.close()


if __name__ == "__main__":
    main()
