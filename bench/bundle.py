"""``kei hibernate export`` and ``kei replay`` on the agent ledger.

kei: the real commands, as a user runs them (fresh processes; peak memory is the
child's ``ru_maxrss``), on a copy of ``agent_ledger.py``'s ledger whose read models
are caught up first (export reports their digests). References, in the same run:
plain ``tar`` + ``zstd -3`` of the database file (what upstream kei-hibernate does,
without any check), and ``kei verify-chain --jobs 2`` on the same ledger (replay
verifies every signature, so the issue's target is replay ≥ 0.8 × verify-chain). Each
command starts on a quiet machine; with ``--reps N`` verify-chain and replay alternate
and the best of each counts. Their CPU seconds (the commands and their workers) show
what two cores allow: replay can be at most verify's CPU / replay's CPU as fast.

    .venv/bin/python bench/bundle.py --agents 100000 --reps 3
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import zstandard

from agent_ledger import cached_agent_ledger
from common import Figure, report, wait_quiet
from kei.adapters.files.keyfile import write_key
from kei.domain.log.keys import SigningKey

KEI = str(Path(sys.executable).with_name("kei"))


def timed(argv: list[str], env: dict[str, str]) -> float:
    return run(argv, env)[0]


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it waited for),
    taken once the machine is quiet."""
    wait_quiet()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode()[-800:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def tar_zstd(db: Path, out: Path) -> float:
    """The reference: the database file in a tar, through zstd level 3, streamed."""
    started = time.perf_counter()
    with out.open("wb") as raw:
        writer = zstandard.ZstdCompressor(level=3).stream_writer(raw)
        with tarfile.open(fileobj=writer, mode="w|") as tar:
            tar.add(db, arcname=db.name)
        writer.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kei-bundle-"))
    db = work / "ledger.db"
    with sqlite3.connect(cached_agent_ledger(args.agents)) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    write_key(work / "keys" / "default.key", SigningKey(b"\x06" * 32, name="bench"))
    env = {**os.environ, "KEI_HOME": str(work), "KEI_DB": str(db)}
    timed([KEI, "projections", "status"], env)  # catch up (not timed)
    events = int(sqlite3.connect(db).execute("SELECT count(*) FROM kei_events").fetchone()[0])
    db_mb = db.stat().st_size / 1e6
    bundle, plain = work / "brain.tar.zst", work / "plain.tar.zst"
    export_s = timed([KEI, "hibernate", "export", "--out", str(bundle)], env)
    export_peak = child_peak_mb()
    tar_s = tar_zstd(db, plain)
    verify_s, replay_s = float("inf"), float("inf")
    for _ in range(args.reps):  # interleaved, the best of each
        wall, verify_cpu = run([KEI, "verify-chain", "--jobs", "2"], env)
        verify_s = min(verify_s, wall)
        copy = work / "copy.db"
        wall, replay_cpu = run([KEI, "replay", str(bundle), "--db", str(copy)], env)
        replay_s = min(replay_s, wall)
        for leftover in work.glob("copy.db*"):
            leftover.unlink()
    peak = child_peak_mb()
    mb = bundle.stat().st_size / 1e6
    print(f"bundles on {events:,} events ({args.agents:,} agents), database {db_mb:.0f} MB")
    print(
        f"CPU seconds (last repetition): verify-chain {verify_cpu:.1f}, replay {replay_cpu:.1f}; "
        f"two cores bound replay/verify at {verify_cpu / max(replay_cpu, verify_cpu):.2f}"
    )
    report(
        [
            Figure("bundle", "export events/s vs tar+zstd of the db file (events/s)",
                   events / export_s, events / tar_s, None),
            Figure("bundle", "export events/s", events / export_s, None, 100_000.0),
            Figure("bundle", "export MB/s (bundle bytes)", mb / export_s, None, None, "MB/s"),
            Figure("bundle", "bundle size vs tar+zstd of the db file", mb,
                   plain.stat().st_size / 1e6, None, "MB", higher=False),
            Figure("bundle", "bundle size vs database size", mb, db_mb, None, "MB",
                   higher=False),
            Figure("bundle", "replay events/s vs verify-chain --jobs 2", events / replay_s,
                   events / verify_s, 0.8),
            Figure("bundle", "export peak memory (child)", export_peak, None, 200.0, "MB",
                   higher=False),
            Figure("bundle", "peak memory, export or replay (children)", peak, None, 300.0,
                   "MB", higher=False),
        ],
        args.json,
    )  # fmt: skip
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
