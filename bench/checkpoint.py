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

Target (issue 14): checkpoint at 1M events <= 50 ms.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from common import Figure, new_events, parse_args, report, scratch_dir, wait_quiet
from kei.adapters.ledger import Ledger
from kei.domain.keys import SigningKey
from verify_chain import cached_ledger

TARGET_MS = 50.0


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


def main() -> None:
    args = parse_args(__doc__ or "", default_events=1_000_000)
    key = SigningKey(b"\x05" * 32, name="bench")  # the cached ledger's key
    with scratch_dir("checkpoint") as tmp:
        url = copy_ledger(cached_ledger(args.events), tmp)
        runs: dict[str, list[tuple[float, float]]] = {"+1": [], "+1000": [], "whole": []}
        with (
            Ledger.open(url, key=key, checkpoint_state=tmp / "state") as ledger,
            Ledger.open(url, key=key) as plain,
        ):
            wait_quiet()
            first_wall, first_cpu, _ = clocked(ledger.checkpoint)
            for rep in range(args.reps):
                for label, n in (("+1", 1), ("+1000", 1000)):
                    ledger.append(new_events(n, seed=10_000 + rep * 7 + n))
                    wait_quiet()
                    wall, cpu, text = clocked(ledger.checkpoint)
                    runs[label].append((wall, cpu))
                wait_quiet()
                wall, cpu, whole_text = clocked(plain.checkpoint)
                runs["whole"].append((wall, cpu))
                assert whole_text == text, "incremental checkpoint differs from the whole-log one"
        size = int(text.split("\n", 2)[1])
    print(f"Ledger.checkpoint() at {size:,} events (SQLite), median of {args.reps}")
    med = {k: (_med([w for w, _ in v]), _med([c for _, c in v])) for k, v in runs.items()}
    figures = [
        Figure("checkpoint", "first (whole log; writes the state), wall", first_wall, unit="ms",
               higher=False),
        Figure("checkpoint", "first (whole log), CPU", first_cpu, unit="ms", higher=False),
        Figure("checkpoint", "after +1 event, wall", med["+1"][0], target=TARGET_MS, unit="ms",
               higher=False),
        Figure("checkpoint", "after +1 event, CPU", med["+1"][1], target=TARGET_MS, unit="ms",
               higher=False),
        Figure("checkpoint", "after +1000 events, wall", med["+1000"][0], target=TARGET_MS,
               unit="ms", higher=False),
        Figure("checkpoint", "after +1000 events, CPU", med["+1000"][1], target=TARGET_MS,
               unit="ms", higher=False),
        Figure("checkpoint", "whole log every time (before), wall", med["whole"][0], unit="ms",
               higher=False),
        Figure("checkpoint", "whole log every time (before), CPU", med["whole"][1], unit="ms",
               higher=False),
    ]  # fmt: skip
    report(figures, args.json)


def _med(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    main()
