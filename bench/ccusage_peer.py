"""ccusage beside ``kei import claude-code``: the peer Claude Code users run for the same
daily report, timed on the same tree in the same run (``claude_code_import.py``).

ccusage is the pinned release ``bash .ci/ccusage`` installs (or ``$KEI_TEST_CCUSAGE``,
or ``--ccusage PATH``). It reads ``$CLAUDE_CONFIG_DIR/projects``; the benchmark's tree
is a projects folder itself, so a config folder beside it holds ``projects`` as a
symbolic link to it. Each run is one child process: its wall time, its stdout, and its
own peak RSS (``wait4``'s ``ru_maxrss``, that child's alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from msgspec import Struct

from common import BENCH_TMP

REPO = Path(__file__).resolve().parent.parent
INSTALLED = REPO / ".ci" / "node" / "node_modules" / ".bin" / "ccusage"
USD = 100_000_000  # µ¢ in a dollar


class Run(Struct, frozen=True):
    """One child process: wall seconds, stdout, peak RSS in MB, CPU seconds (user and
    system, its own and its waited-for children's)."""

    seconds: float
    stdout: str
    peak_mb: float
    cpu_s: float = 0.0


def ccusage_path(given: str | None) -> Path | None:
    """``--ccusage``, else ``$KEI_TEST_CCUSAGE``, else the one ``.ci/ccusage`` installed."""
    for candidate in (given, os.environ.get("KEI_TEST_CCUSAGE")):
        if candidate:
            return Path(candidate)
    return INSTALLED if INSTALLED.exists() else None


def config_dir(projects: Path) -> Path:
    """A ``CLAUDE_CONFIG_DIR`` whose ``projects`` is ``projects`` (a symbolic link)."""
    config = BENCH_TMP / f"claude-config-{projects.name}"
    link = config / "projects"
    if not link.is_symlink():
        config.mkdir(parents=True, exist_ok=True)
        link.symlink_to(projects, target_is_directory=True)
    return config


def timed(args: list[str], env: dict[str, str]) -> Run:
    """Run ``args``; its stdout goes to a file, so a large report never fills a pipe."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        err = child.stderr.read() if child.stderr else ""
        if child.returncode != 0:
            raise RuntimeError(f"{args[0]} exited {child.returncode}: {err[-800:]}")
        out.seek(0)
        return Run(seconds, out.read(), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def ccusage_daily(path: Path, config: Path) -> Run:
    """``ccusage daily --json --offline`` on ``config``'s tree, days in UTC as kei's."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(config),
           "CLAUDE_CONFIG_DIR": str(config), "TZ": "UTC", "NO_COLOR": "1"}  # fmt: skip
    return timed([str(path), "daily", "--json", "--offline"], env)


def ccusage_days(run: Run) -> dict[str, int]:
    """ccusage's daily totals in µ¢."""
    rows = json.loads(run.stdout)["daily"]
    return {r["date"]: round(Decimal(str(r["totalCost"])) * USD) for r in rows}


def kei_days(run: Run) -> dict[str, int]:
    """``kei cost report --by day --json``'s totals in µ¢."""
    return {r["day"]: int(r["micro_cents"]) for r in json.loads(run.stdout)["rows"]}


def agreement(kei: dict[str, int], ccusage: dict[str, int]) -> str:
    """How the two daily reports compare: same days, and the largest gap in µ¢."""
    if set(kei) != set(ccusage):
        return f"days differ: kei {len(kei)}, ccusage {len(ccusage)}"
    gap = max((abs(kei[d] - ccusage[d]) for d in kei), default=0)
    total = sum(kei.values())
    return (f"{len(kei)} days, total ${Decimal(total) / USD:.2f}; "
            f"largest daily gap {gap} µ¢")  # fmt: skip
