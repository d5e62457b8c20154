"""``kei import claude-code`` of a tree of Claude Code transcripts: lines/s, MB/s, peak memory.

The tree (built once, cached under /tmp): sessions of about 4 MB in Claude Code's JSONL
format, each with two sub-agent files, in several project folders. A third of the lines
are assistant messages with ``message.usage`` (cache reads and 5-minute/1-hour cache
writes), one in ten of those written twice as streaming does; the rest are prompts and
``tool_result`` lines carrying 1-4 KB of file contents, about 2 KB a line. kei: the real
command in a fresh process (discover, parse, dedupe, price, fork the session and
sub-agent agents, signed appends), then again (nothing new: every line is read, parsed
and recognised). Parse only: kei's line parser over the same files in this process,
without the ledger. Raw limit: the plain loop any importer pays, reading each line and
``json.loads`` it. Peak memory is the child's ``ru_maxrss``.

Beside the peer (``ccusage_peer.py``): ``ccusage daily --json --offline`` on the same
tree, against kei's way to the same daily report: the first import then
``kei cost report --by day --json`` (which folds the new events into the read model
first), and the steady state, a re-run that finds nothing new then the report. The two
reports' daily totals are compared (the tree's prices are the same in both tools).

    .venv/bin/python bench/claude_code_import.py --mb 1000
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from ccusage_peer import (
    Run,
    agreement,
    ccusage_daily,
    ccusage_days,
    ccusage_path,
    config_dir,
    kei_days,
)
from ccusage_peer import timed as timed_child
from common import BENCH_TMP, Figure, initialised_home, parse_args, report

KEI = str(Path(sys.executable).with_name("kei"))
SESSION_BYTES = 4_000_000
WORDS = ("the", "retry", "backoff", "fn", "let", "self", "return", "Ok(())", "assert_eq!",
         "tokio::time::sleep", "Duration::from_millis", "if", "else", "match", "error")  # fmt: skip
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7")


def tree(mb: int) -> Path:
    """The cached tree of at least ``mb`` MB (built on first use)."""
    root = BENCH_TMP / f"claude-projects-{mb}mb"
    done = root / ".complete"
    if done.exists():
        return root
    rng, size, n = random.Random(11), 0, 0
    while size < mb * 1_000_000:
        session = f"{n:08d}-0000-4000-8000-{n:012d}"
        folder = root / f"-home-dev-proj{n % 7}"
        size += _write(folder / f"{session}.jsonl", rng, session, n, None)
        for k in range(2):
            sub = folder / session / "subagents" / f"agent-a{n}x{k}.jsonl"
            size += _write(sub, rng, session, n, f"a{n}x{k}", SESSION_BYTES // 8)
        n += 1
    done.touch()
    return root


def _write(
    path: Path,
    rng: random.Random,
    session: str,
    n: int,
    agent: str | None,
    cap: int = SESSION_BYTES,
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    size, i = 0, 0
    with path.open("w") as out:
        while size < cap:
            for line in _lines(rng, session, n, i, agent):
                text = json.dumps(line, separators=(",", ":")) + "\n"
                out.write(text)
                size += len(text)
            i += 1
    return size


def _lines(
    rng: random.Random, session: str, n: int, i: int, agent: str | None
) -> list[dict[str, object]]:
    ts = f"2026-11-{1 + n % 28:02d}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000Z"
    base = {"parentUuid": None, "isSidechain": agent is not None, "userType": "external",
            "cwd": f"/home/dev/proj{n % 7}", "sessionId": session, "version": "2.0.61",
            "gitBranch": "main", "timestamp": ts, **({"agentId": agent} if agent else {})}  # fmt: skip
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 600)))
    write = rng.randint(0, 4000)
    usage = {"input_tokens": rng.randint(1, 50), "cache_creation_input_tokens": write,
             "cache_read_input_tokens": rng.randint(0, 150_000),
             "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
             "output_tokens": rng.randint(1, 2000), "service_tier": "standard"}  # fmt: skip
    reply = {**base, "type": "assistant", "requestId": f"req_{session}_{agent}_{i}",
             "uuid": f"u{n}-{agent}-{i}",
             "message": {"id": f"msg_{session}_{agent}_{i}", "type": "message", "role": "assistant",
                         "model": MODELS[i % 3], "usage": usage,
                         "content": [{"type": "text", "text": text[:200]},
                                     {"type": "tool_use", "id": f"t{i}", "name": "Read",
                                      "input": {"file_path": "/repo/src/retry.rs"}}]}}  # fmt: skip
    result = {**base, "type": "user", "uuid": f"r{n}-{agent}-{i}",
              "message": {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": f"t{i}", "content": text}]},
              "toolUseResult": {"type": "text", "file": {"content": text[:500]}}}  # fmt: skip
    prompt = {**base, "type": "user", "uuid": f"p{n}-{agent}-{i}",
              "message": {"role": "user", "content": f"step {i}: {text[:300]}"}}  # fmt: skip
    streamed = [reply] if rng.random() < 0.1 else []
    return [prompt, reply, *streamed, result]


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl"))


def run(root: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run([KEI, "import", "claude-code", str(root), "--json"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-800:])
    return time.perf_counter() - started, json.loads(done.stdout)


def raw_rate(paths: list[Path]) -> float:
    started, n = time.perf_counter(), 0
    for path in paths:
        with path.open("rb") as fh:
            for line in fh:
                json.loads(line)
                n += 1
    return n / (time.perf_counter() - started)


def parse_rate(paths: list[Path]) -> float:
    """kei's reader and line parser alone (no ledger), lines/s."""
    from kei.app.importers.claude_files import lines, subagent_of
    from kei.domain.claude_code.transcript import parse_line

    started, n = time.perf_counter(), 0
    for path in paths:
        agent = subagent_of(path)
        for number, raw in lines(path):
            if raw is not None:
                parse_line(raw, number, path.stem, agent)
            n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    args = parse_args(__doc__ or "", 0, mb={"type": int, "default": 200},
                      ccusage={"default": None, "help": "ccusage executable (default: .ci/ccusage's)"})  # fmt: skip
    root = tree(args.mb)
    paths = files(root)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    with initialised_home("kei-claude-import") as env:
        first_s, first = run(root, env)
        again_s, again = run(root, env)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        daily = [KEI, "cost", "report", "--by", "day", "--json"]
        cold, warm = timed_child(daily, env), timed_child(daily, env)
    lines = int(str(first["lines"]))
    print(f"kei import claude-code of {mb:.0f} MB, {len(paths)} files, {lines:,} lines: "
          f"{first['events_appended']} cost events, {first['agents_forked']} agents; "
          f"again: {again['events_appended']} appended")  # fmt: skip
    raw = raw_rate(paths)
    figures = [
        Figure("claude-import", "lines/s, first import, vs read + json.loads",
               lines / first_s, raw, 0.5, "lines/s"),
        Figure("claude-import", "MB/s, first import", mb / first_s, None, None, "MB/s"),
        Figure("claude-import", "lines/s, again (nothing new), vs read + json.loads",
               lines / again_s, raw, 0.5, "lines/s"),
        Figure("claude-import", "lines/s, parse only, vs read + json.loads",
               parse_rate(paths), raw, None, "lines/s"),
        Figure("claude-import", "peak memory (child)", peak, None, None, "MB", higher=False),
    ]  # fmt: skip
    figures += peer_figures(args.ccusage, root, lines, (first_s, again_s), (cold, warm))
    report(figures, args.json)


def peer_figures(
    given: str | None,
    root: Path,
    lines: int,
    imports: tuple[float, float],
    reports: tuple[Run, Run],
) -> list[Figure]:
    """ccusage daily on the same tree, and kei's import + daily report beside it (the
    "raw limit" column holds ccusage's rate); none when no ccusage is installed."""
    path = ccusage_path(given)
    if path is None:
        print("ccusage: not installed (bash .ci/ccusage), not timed")
        return []
    peer = ccusage_daily(path, config_dir(root))
    (first_s, again_s), (cold, warm) = imports, reports
    print(f"daily totals, kei vs ccusage: {agreement(kei_days(warm), ccusage_days(peer))}")
    rate = lines / peer.seconds
    return [
        Figure("claude-import", "ccusage daily --json --offline", rate, None, None, "lines/s",
               note=f"{peer.seconds:.1f} s"),
        Figure("claude-import", "lines/s, first import + daily report, vs ccusage daily",
               lines / (first_s + cold.seconds), rate, None, "lines/s",
               note=f"{first_s:.1f} s + {cold.seconds:.1f} s"),
        Figure("claude-import", "lines/s, again + daily report, vs ccusage daily",
               lines / (again_s + warm.seconds), rate, None, "lines/s",
               note=f"{again_s:.1f} s + {warm.seconds:.2f} s"),
        Figure("claude-import", "peak memory, ccusage daily", peer.peak_mb, None, None, "MB",
               higher=False),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
