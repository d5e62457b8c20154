"""``kei verify-chain`` on a large SQLite ledger: full (--jobs 2), --quick, peak memory.

- The ledger (default 1,000,000 events) is built once and cached under
  ``/tmp/kei-bench-cache`` (never in the repository); ``--events`` scales it down.
- raw limit: PyNaCl ``VerifyKey.verify`` over 20,000 of the ledger's own signed
  messages on one core, times 2 (the issue's anchor for two processes).
- kei: the real command, ``kei --db URL verify-chain --jobs 2 --json`` (and
  ``--quick``), as a subprocess; wall time includes start-up. Peak memory is the
  largest resident set of the command or any of its worker processes
  (``wait4`` rusage, ``ru_maxrss``).

Targets: full >= 0.85 x raw; --quick >= 300,000 events/s; peak memory < 200 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nacl.signing

from common import BENCH_TMP, Figure, new_events, parse_args, report, wait_quiet
from kei.adapters.store import open_store
from kei.app.ledger.ledger import Ledger
from kei.domain.log.envelope import open_state, signed_message
from kei.domain.log.keys import SigningKey

CACHE = Path(os.environ.get("KEI_BENCH_CACHE", "/tmp/kei-bench-cache"))
KEI = Path(sys.executable).with_name("kei")
BUILD_BATCH = 1000
SAMPLE = 20_000


def cached_ledger(events: int) -> str:
    """The URL of a ledger holding ``events`` events plus the genesis, built once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"verify-{events}.db"
    done = path.with_suffix(".done")
    if done.exists() and path.exists():
        return f"sqlite:///{path}"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    started = time.perf_counter()
    key = SigningKey(b"\x05" * 32, name="bench")
    with Ledger.open(url, key=key, create=True, synchronous="OFF") as ledger:
        ledger.init("bench-verify")
        for lo in range(0, events, 10 * BUILD_BATCH):
            chunk = new_events(min(10 * BUILD_BATCH, events - lo), seed=lo)
            for i in range(0, len(chunk), BUILD_BATCH):
                ledger.append(chunk[i : i + BUILD_BATCH])
    done.write_text(f"{events}\n")
    print(f"built {events:,} events in {time.perf_counter() - started:.0f} s: {path}")
    return url


def raw_verify_rate(url: str) -> float:
    """PyNaCl verifications per second on one core, over the ledger's own events."""
    store = open_store(url)
    try:
        records = store.read(after=1, limit=SAMPLE)
    finally:
        store.close()
    key = nacl.signing.VerifyKey(SigningKey(b"\x05" * 32).public_key)
    work = [
        (signed_message(r.stream, r.version, r.type, r.state), open_state(r.state).signature)
        for r in records
    ]
    started = time.perf_counter()
    for message, signature in work:
        key.verify(message, signature)
    return len(work) / (time.perf_counter() - started)


def run_cli(url: str, *flags: str) -> tuple[float, dict[str, Any], float]:
    """Run ``kei verify-chain``; (events/s, JSON report, peak RSS in MB)."""
    env = os.environ | {"KEI_HOME": str(BENCH_TMP / "home")}
    cmd = [str(KEI), "--db", url, "verify-chain", "--json", *flags]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = json.loads(out)
    if proc.returncode != 0 or not result["ok"]:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {result['findings'][:3]}")
    return result["events_checked"] / elapsed, result, usage.ru_maxrss / 1024


def main() -> None:
    args = parse_args(__doc__ or "", default_events=1_000_000)
    url = cached_ledger(args.events)
    full, quick, raw, peaks = [], [], [], []
    for _ in range(args.reps):
        wait_quiet()
        raw.append(2 * raw_verify_rate(url))
        wait_quiet()
        rate, result, peak = run_cli(url, "--jobs", "2")
        full.append(rate)
        peaks.append(peak)
        wait_quiet()
        rate, result, peak = run_cli(url, "--quick")
        quick.append(rate)
        peaks.append(peak)
    checked = result["events_checked"]
    print(f"verify-chain on {checked:,} events (SQLite), median of {args.reps}")
    report(
        [
            Figure(
                "verify", "verify-chain --jobs 2 vs PyNaCl verify x 2", _med(full), _med(raw), 0.85
            ),
            Figure("verify", "verify-chain --quick", _med(quick), target=300_000),
            Figure(
                "verify",
                "peak memory, largest process",
                max(peaks),
                target=200,
                unit="MB",
                higher=False,
            ),
        ],
        args.json,
    )


def _med(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


if __name__ == "__main__":
    main()
