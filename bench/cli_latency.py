"""Wall time of kei's write commands as a hook runs them: one process per command.

On a warm SQLite ledger in a throwaway ``KEI_HOME`` (initialised, one agent tree
written, every command run once before timing, kei's bytecode written as an installed
kei has it), each command runs ``--runs`` times
with fresh ids, alternating with ``python -c pass`` in the same run, so the ratio
compares like with like on this shared 2-vCPU VM. Printed per command: p50 and p90 in
ms and p50 / p50 of ``python -c pass``; also, as a floor, importing the libraries every
write needs (msgspec, PyNaCl, sqlite3, eventsourcing's recorder) with no kei code. Targets (issue 16): write commands p50 <= 120
ms and <= 5x ``python -c pass``; ``kei --help`` and ``kei --version`` <= 80 ms. Run
twice in one go: each command in a process of its own (``KEI_DAEMON=off``), then with
``kei daemon`` running, where each command runs in a fork of a warm process.

    .venv/bin/python bench/cli_latency.py [--runs 20] [--json FILE]

Not a test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import count
from pathlib import Path

from common import compile_kei

KEI = [sys.executable, "-m", "kei"]
WRITE_TARGET_MS = 120.0
WRITE_TARGET_RATIO = 5.0
HELP_TARGET_MS = 80.0
Args = Callable[[int], Sequence[str]]


def _commands(dna: str) -> dict[str, Args]:
    """Each benchmarked command as a function of the run number (fresh ids)."""
    return {
        "agent fork": lambda i: ["agent", "fork", f"f{i}", f"agent/f{i}", "--parent", "root"],
        "agent done": lambda i: ["agent", "done", f"d{i}", "--summary", "ok"],
        "agent fail": lambda i: ["agent", "fail", f"x{i}", "--reason", "no"],
        "agent merged": lambda i: ["agent", "merged", f"m{i}"],
        "agent outcome": lambda i: ["agent", "outcome", f"o{i}", "--outcome", "functional"],
        "cost record": lambda i: [
            *("cost", "record", "root", "--provider", "anthropic", "--model", "m"),
            *("--tokens-in", "10", "--tokens-out", "5", "--micro-cents", str(100 + i)),
        ],
        "memory write": lambda i: ["memory", "write", f"k{i}", "value", "--dna", dna],
        "skill record": lambda i: ["skill", "record", "tests", "--success"],
        "events tail -n 20": lambda i: ["events", "tail", "-n", "20"],
        "hook PreToolUse": lambda i: ["hook", "claude-code"],
        "hook PostToolUse": lambda i: ["hook", "claude-code"],
        "kei --help": lambda i: ["--help"],
        "kei --version": lambda i: ["--version"],
    }


def _hook_payload(event: str, i: int) -> str:
    """A Claude Code hook payload for the Task tool, as ``tests/fixtures/claude_code``
    has them: PreToolUse forks a subagent, PostToolUse finishes it."""
    call = {"session_id": "bench-session", "cwd": "/", "hook_event_name": event,
            "tool_name": "Task", "tool_use_id": f"toolu_bench_{i}",
            "tool_input": {"description": "bench", "prompt": "p", "subagent_type": "coder"}}  # fmt: skip
    if event == "PostToolUse":
        call["tool_response"] = {"status": "completed", "content": [{"type": "text", "text": "ok"}]}
    return json.dumps(call)


# The libraries every kei write must import (the project's foundations: msgspec for
# events, PyNaCl for signatures, eventsourcing's SQLite recorder), with nothing of
# kei's: what a write costs at the very least, whatever kei does.
FOUNDATIONS = "import msgspec, nacl.signing, sqlite3, eventsourcing.sqlite"
HOOK_INPUT: dict[str, Callable[[int], str]] = {
    "hook PreToolUse": lambda i: _hook_payload("PreToolUse", i),
    "hook PostToolUse": lambda i: _hook_payload("PostToolUse", i),
}
CPU: list[float] = []  # the child's user + system time of each run, in ms


def _run(argv: Sequence[str], env: dict[str, str], stdin: str | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, check=False)
    took = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return took


def _prepare(env: dict[str, str], runs: int) -> None:
    """A ledger with the agents each run needs: ``d*``/``x*`` running, ``m*``/``o*`` done."""
    _run([*KEI, "init"], env)
    _run([*KEI, "agent", "fork", "root", "main"], env)
    for i in range(-2, runs):
        for prefix in ("d", "x", "m", "o"):
            _run([*KEI, "agent", "fork", f"{prefix}{i}", f"agent/{prefix}{i}"], env)
        for prefix in ("m", "o"):
            _run([*KEI, "agent", "done", f"{prefix}{i}", "--summary", "ok"], env)


def _stdin(name: str, i: int) -> str | None:
    payload = HOOK_INPUT.get(name)
    return None if payload is None else payload(i)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, help="append one JSON line per command here")
    args = parser.parse_args()
    compile_kei()  # kei's bytecode, as an installed kei has it
    with tempfile.TemporaryDirectory(prefix="kei-cli-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEI_")}
        env["KEI_HOME"] = home
        _prepare({**env, "KEI_DAEMON": "off"}, 2 * args.runs)
        ids = count()
        cold = {**env, "KEI_DAEMON": "off"}
        print("each command in a process of its own (KEI_DAEMON=off):")
        _measure(cold, args.runs, ids, args.json, "cold", -1)
        warm = {**env, "KEI_DAEMON_DIR": str(Path(home) / "daemon")}
        _run([*KEI, "daemon", "start"], warm)
        try:
            print("with `kei daemon` running (cpu: the calling process only):")
            _measure(warm, args.runs, ids, args.json, "daemon", -2)
        finally:
            _run([*KEI, "daemon", "stop"], warm)


def _measure(env: dict[str, str], runs: int, ids: Iterator[int], out: Path | None,
             mode: str, warm_up: int) -> None:  # fmt: skip
    """Every command ``runs`` times, each beside a ``python -c pass``, then the report."""
    commands = _commands("coder::py::abcdef12::abcdef12-abcdef12")
    for name, make in commands.items():  # warm: caches, read models, .pyc files
        _run([*KEI, *make(warm_up)], env, _stdin(name, warm_up))
    base: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in commands}
    times["import foundations"] = []
    cpu: dict[str, list[float]] = {name: [] for name in ["python -c pass", *times]}
    for _ in range(runs):
        i = next(ids)
        for name, make in commands.items():
            base.append(_run([sys.executable, "-c", "pass"], env))
            cpu["python -c pass"].append(CPU[-1])
            if name == "kei --version":  # once a round, like each command
                times["import foundations"].append(_run([sys.executable, "-c", FOUNDATIONS], env))
                cpu["import foundations"].append(CPU[-1])
            times[name].append(_run([*KEI, *make(i)], env, _stdin(name, i)))
            cpu[name].append(CPU[-1])
    _report(base, times, cpu, out, mode)


def _verdict(name: str, p50: float, ratio: float) -> str:
    if name == "import foundations":
        return "(no kei code)"
    target = HELP_TARGET_MS if name.startswith("kei --") else WRITE_TARGET_MS
    ok = p50 <= target and (name.startswith("kei --") or ratio <= WRITE_TARGET_RATIO)
    return (f"(target {target:.0f} ms{'' if name.startswith('kei --') else ', 5x'}: "
            f"{'met' if ok else 'MISSED'})")  # fmt: skip


def _report(base: list[float], times: dict[str, list[float]], cpu: dict[str, list[float]],
            out: Path | None, mode: str) -> None:  # fmt: skip
    """Wall p50/p90, the ratio to ``python -c pass`` and the target; then the CPU time
    (user + system) p50, which other load on the VM inflates far less than wall time."""
    floor = statistics.median(base)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"{'python -c pass':<20} p50 {floor:7.1f} ms  p90 {_percentile(base, 0.9):7.1f} ms"
        f"  cpu {statistics.median(cpu['python -c pass']):6.1f} ms"
    )
    for name, values in times.items():
        p50, p90 = statistics.median(values), _percentile(values, 0.9)
        ratio = p50 / floor
        print(
            f"{name:<20} p50 {p50:7.1f} ms  p90 {p90:7.1f} ms  cpu {statistics.median(cpu[name]):6.1f}"
            f" ms  {ratio:5.1f}x  {_verdict(name, p50, ratio)}"
        )
        if out is not None:
            with out.open("a", encoding="utf-8") as f:
                line = {"mode": mode, "command": name, "p50_ms": p50, "p90_ms": p90, "ratio": ratio,
                        "cpu_p50_ms": statistics.median(cpu[name])}  # fmt: skip
                f.write(json.dumps({**line, "python_pass_ms": floor}) + "\n")


if __name__ == "__main__":
    main()
