"""``Ledger.checkpoint()`` at scale: the whole log checked once, then only what was appended.

- The ledger (default 1,000,000 events, SQLite) is ``bench/verify_chain.py``'s cached
  one, copied into the bench's scratch folder (the bench appends to the copy).
- first: ``checkpoint()`` with an empty state folder: checks the whole log (links and
  recomputed hashes, key events, stream versions, the tree from every chain row), as
  every checkpoint did before issue 14's incremental path; writes the state.
- +1 / +1000: append 1 (or 1,000) events (not timed), then ``checkpoint()`` again: only
  the appended rows are checked and extend the saved compact range. Median of --reps.
- whole log: the same ledger opened without a state folder (the path every checkpoint
  took before), alternated with the incremental runs so both see the same load.
- Each is timed as wall time and as CPU time of this process (``time.process_time``;
  the check runs in this process, ``jobs=1``); the machine is shared, so the CPU
  figures are the steadier ones. Every incremental checkpoint is compared byte for
  byte with the whole-log one of the same size.

- ``--pg``: the same on PostgreSQL, on a ledger of ``--events`` built in the run
  (``Ledger.append`` in batches of 1,000) in a throwaway database, then ``ANALYZE``d:
  right after a bulk load PostgreSQL has no statistics and joins the key stream's read
  to the whole chain table (50 ms at 300k events); autovacuum analyzes a live one.

Target (issue 14): checkpoint at 1M events <= 50 ms.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from common import Figure, new_events, parse_args, report, scratch_dir, scratch_pg, wait_quiet
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey
from verify_chain import cached_ledger

TARGET_MS = 50.0
QUIET_WAIT = 10.0  # s; the CPU-time figures hold under load, the wall ones less so


def clocked(fn: Callable[[], str]) -> tuple[float, float, str]:
    """(wall ms, CPU ms, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, out


def copy_ledger(url: str, folder: Path) -> str:
    source = Path(url[len("sqlite:///") :])
    target = folder / "ledger.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


def build_pg(url: str, events: int, key: SigningKey) -> str:
    """A signed ledger of ``events`` events in a throwaway PostgreSQL database."""
    started = time.perf_counter()
    with Ledger.open(url, key=key, create=True) as ledger:
        ledger.init("bench-checkpoint")
        for lo in range(0, events, 10_000):
            chunk = new_events(min(10_000, events - lo), seed=lo)
            for i in range(0, len(chunk), 1000):
                ledger.append(chunk[i : i + 1000])
    print(f"built {events:,} events in PostgreSQL in {time.perf_counter() - started:.0f} s")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:  # a live database has statistics
        conn.execute("ANALYZE")
    return url


Runs = dict[str, list[tuple[float, float]]]


def measure(url: str, key: SigningKey, state: Path, reps: int) -> tuple[Runs, int]:
    """First, +1, +1000 (incremental) and the whole-log path, alternated."""
    runs: Runs = {"first": [], "+1": [], "+1000": [], "whole": []}
    with (
        Ledger.open(url, key=key, checkpoint_state=state) as ledger,
        Ledger.open(url, key=key) as plain,
    ):
        wait_quiet(QUIET_WAIT)
        wall, cpu, text = clocked(ledger.checkpoint)
        runs["first"].append((wall, cpu))
        for rep in range(reps):
            for label, n in (("+1", 1), ("+1000", 1000)):
                ledger.append(new_events(n, seed=10_000 + rep * 7 + n))
                wait_quiet(QUIET_WAIT)
                wall, cpu, text = clocked(ledger.checkpoint)
                runs[label].append((wall, cpu))
            wait_quiet(QUIET_WAIT)
            wall, cpu, whole_text = clocked(plain.checkpoint)
            runs["whole"].append((wall, cpu))
            assert whole_text == text, "incremental checkpoint differs from the whole-log one"
    return runs, int(text.split("\n", 2)[1])


def figures(store: str, runs: Runs) -> list[Figure]:
    med = {k: (_med([w for w, _ in v]), _med([c for _, c in v])) for k, v in runs.items()}
    names = {
        "first": ("first (whole log; writes the state)", None),
        "+1": ("after +1 event", TARGET_MS),
        "+1000": ("after +1000 events", TARGET_MS),
        "whole": ("whole log every time (before)", None),
    }
    return [
        Figure("checkpoint", f"{store}: {name}, {clock}", med[k][i], target=target, unit="ms",
               higher=False)
        for k, (name, target) in names.items()
        for i, clock in ((0, "wall"), (1, "CPU"))
    ]  # fmt: skip


def main() -> None:
    args = parse_args(
        __doc__ or "",
        default_events=1_000_000,
        pg={"action": "store_true", "help": "also on PostgreSQL (a ledger built in the run)"},
    )
    key = SigningKey(b"\x05" * 32, name="bench")  # the cached ledger's key
    with scratch_dir("checkpoint") as tmp:
        url = copy_ledger(cached_ledger(args.events), tmp)
        runs, size = measure(url, key, tmp / "state", args.reps)
    print(f"Ledger.checkpoint() at {size:,} events, median of {args.reps}")
    results = figures("SQLite", runs)
    if args.pg:
        with scratch_pg() as pg, scratch_dir("checkpoint-pg") as tmp:
            runs, size = measure(build_pg(pg, args.events, key), key, tmp / "state", args.reps)
        print(f"PostgreSQL: {size:,} events")
        results += figures("PostgreSQL", runs)
    report(results, args.json)


def _med(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    main()
