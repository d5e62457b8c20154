"""The read-path cost of checking read models on ``kei cost report`` and ``kei agent tree``.

Same ledger (``bench/agent_ledger.py``), same run, commands as fresh processes,
interleaved: **without the seal check** (the CLI with its seal key taken away: the
plain-SQL fast path, which still checks that the log holds the event the read models
last folded) and **with it** (kei as shipped: the engine checks the seals of
``agents`` and ``costs``, a full state digest of each). Also the check alone, in a
running process: one keyed catch-up that finds nothing new.

    .venv/bin/python bench/read_model_check.py --agents 100000 --reps 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_ledger import SESSION, agent_id, cached_agent_ledger
from common import Figure, compile_kei, report
from kei.adapters.files.keyfile import write_key
from kei.domain.log.keys import SigningKey

RUN = "from kei.adapters.cli.app import main; main()"
NO_SEAL = "import kei.adapters.cli.context as c; c.seal_key = lambda settings: None; " + RUN


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or b"rebuilt" in done.stderr:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def check_alone_s(db: Path, home: Path, reps: int) -> tuple[float, float]:
    """One catch-up of agents and costs that finds nothing new: (without, with) a key."""
    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.adapters.readmodels.seal_key import load_or_create
    from kei.app.ledger.ledger import Ledger
    from kei.projections.agents import Agents
    from kei.projections.costs import Costs

    url = f"sqlite:///{db}"
    out = []
    with Ledger.open(url) as ledger:
        for key in (None, load_or_create(home)):
            engine = ProjectionEngine(url, ledger.store, [Agents(), Costs()], seal_key=key)
            samples = []
            for _ in range(reps):
                started = time.perf_counter()
                engine.catch_up()
                samples.append(time.perf_counter() - started)
            engine.close()
            out.append(statistics.median(samples))
    return out[0], out[1]


def record_figure(db: Path, work: Path, env: dict[str, str], reps: int) -> Figure:
    """``kei cost record`` (a write: its catch-up checks and re-seals both read models).
    Each variant on its own copy: a run without the key leaves the seals behind the
    rows, and the next keyed run would rebuild."""
    medians = []
    for variant, code in (("plain", NO_SEAL), ("sealed", RUN)):
        copy = work / f"{variant}.db"
        shutil.copy(db, copy)
        env_copy = {**env, "KEI_DB": str(copy)}
        args = ["cost", "record", agent_id(1), "--provider", "x", "--model", "y",
                "--micro-cents", "1"]  # fmt: skip
        medians.append(statistics.median(
            timed([sys.executable, "-c", code, *args], env_copy) for _ in range(reps)
        ))  # fmt: skip
    b, a = medians
    note = f"without the seal check {b:.3f} s, with it {a:.3f} s (+{a - b:.3f} s)"
    return Figure("seal", "cost record (a write)", a, b, None, "s", note, higher=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_kei()
    work = Path(tempfile.mkdtemp(prefix="kei-seal-"))
    db = work / "ledger.db"
    shutil.copy(cached_agent_ledger(args.agents), db)
    write_key(work / "keys" / "default.key", SigningKey(b"\x06" * 32, name="bench"))
    env = {**os.environ, "KEI_HOME": str(work), "KEI_DB": str(db)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUN, "projections", "status"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    print(f"caught up and sealed {args.agents:,} agents in {time.perf_counter() - started:.0f} s")
    session = agent_id(SESSION * (args.agents // SESSION // 2))
    cases = [
        (f"agent tree (a session, {SESSION} agents)", ["agent", "tree", session]),
        ("cost report --by agent", ["cost", "report"]),
        ("cost report --by model", ["cost", "report", "--by", "model"]),
    ]
    figures = []
    for label, kei_args in cases:
        before: list[float] = []
        after: list[float] = []
        for _ in range(args.reps):  # interleaved, so both see the same machine
            before.append(timed([sys.executable, "-c", NO_SEAL, *kei_args], env))
            after.append(timed([sys.executable, "-c", RUN, *kei_args], env))
        b, a = statistics.median(before), statistics.median(after)
        note = f"without the seal check {b:.3f} s, with it {a:.3f} s (+{a - b:.3f} s)"
        figures.append(Figure("seal", label, a, b, None, "s", note, higher=False))
    figures.append(record_figure(db, work, env, args.reps))
    without, with_key = check_alone_s(db, work, args.reps)
    figures.append(
        Figure("seal", "keyed catch-up of agents+costs, nothing new (in process)", with_key,
               without, None, "s", "raw column: the same catch-up without a key", higher=False)
    )  # fmt: skip
    print(f"read-model check on {args.agents:,} agents (SQLite), median of {args.reps}")
    print("kei column: with the seal check; raw column: without it (same run)")
    report(figures, args.json)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
