"""``kei events tail --follow`` latency: from an event's commit to its printed line.

For each store (a SQLite file, a throwaway PostgreSQL database):

1. start ``kei --db URL events tail --follow --json -n 0`` as a subprocess;
2. a separate writer process appends ``--events`` events one at a time, a few ms
   apart, and reports the wall-clock time right after each ``append`` returned
   (that is, after the commit);
3. this process reads the tail's stdout and stamps each line as it arrives.

Latency = arrival - commit, matched by the event's ``micro_cents``. Printed: p50,
p99 and max in ms. The issue asks for "within a second of their commit".
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import BENCH_TMP, Figure, parse_args, report, scratch_dir, scratch_pg, wait_quiet
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import CostRecorded
from kei.domain.log.keys import SigningKey

KEI = Path(sys.executable).with_name("kei")
SEED = b"\x09" * 32
GAP_S = 0.02

WRITER = r"""
import sys, time
from kei import Ledger, NewEvent, SigningKey
from kei.domain import events

url, seed, count, gap = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ledger = Ledger.open(url, key=SigningKey(seed, name="bench"))
for n in range(1, count + 1):
    ledger.append([NewEvent(f"agent-{n % 10}", events.CostRecorded(
        agent_id=f"agent-{n % 10}", provider="p", model="m", micro_cents=n))])
    print(n, time.time(), flush=True)
    time.sleep(gap)
ledger.close()
"""


def measure(url: str, count: int) -> list[float]:
    """Latencies in ms for ``count`` events appended while the tail follows."""
    arrivals: dict[int, float] = {}
    env = os.environ | {"KEI_HOME": str(BENCH_TMP / "home")}
    tail = subprocess.Popen(
        [str(KEI), "--db", url, "events", "tail", "--follow", "--json", "-n", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        env=env,
    )

    def read() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            stamp = time.time()
            arrivals[int(json.loads(line)["payload"]["micro_cents"])] = stamp

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _warm_up(url, arrivals)
        arrivals.clear()
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, url, SEED.hex(), str(count), str(GAP_S)],
            capture_output=True,
            text=True,
            check=True,
        )
        commits = {int(n): float(t) for n, t in (ln.split() for ln in writer.stdout.splitlines())}
        deadline = time.monotonic() + 10
        while len(arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    missing = count - len(arrivals)
    if missing:
        raise RuntimeError(f"the tail never printed {missing} of {count} events")
    return [1000 * (arrivals[n] - commits[n]) for n in commits]


def _warm_up(url: str, arrivals: dict[int, float]) -> None:
    """Append a warm-up event every half second until the tail shows one.

    An event committed before the tail has read the log's head counts as history
    (``-n 0`` hides it), so one attempt is not enough.
    """
    warm = NewEvent("warm-up", CostRecorded(agent_id="w", provider="p", model="m", micro_cents=0))
    deadline = time.monotonic() + 30
    with Ledger.open(url, key=SigningKey(SEED, name="bench")) as ledger:
        while 0 not in arrivals:
            if time.monotonic() > deadline:
                raise RuntimeError("the tail printed nothing within 30 s")
            ledger.append([warm])
            time.sleep(0.5)


def figures(store: str, latencies: list[float]) -> list[Figure]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    note = f"{len(ordered)} events, max {ordered[-1]:.1f} ms"
    return [
        Figure("tail", f"tail --follow p50, {store}", statistics.median(ordered), unit="ms"),
        Figure(
            "tail",
            f"tail --follow p99, {store}",
            p99,
            target=1000,
            unit="ms",
            higher=False,
            note=note,
        ),
    ]


def main() -> None:
    args = parse_args(__doc__ or "", default_events=300)
    results = []
    with scratch_dir("tail") as tmp:
        url = f"sqlite:///{tmp / 'tail.db'}"
        _init(url)
        wait_quiet()
        results += figures("SQLite", measure(url, args.events))
    with scratch_pg() as url:
        _init(url)
        wait_quiet()
        results += figures("PostgreSQL", measure(url, args.events))
    print(f"tail --follow latency, commit -> printed line, {args.events} events per store")
    report(results, args.json)


def _init(url: str) -> None:
    with Ledger.open(url, key=SigningKey(SEED, name="bench"), create=True) as ledger:
        ledger.init("bench-tail")


if __name__ == "__main__":
    main()
