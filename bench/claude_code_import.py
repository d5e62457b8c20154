"""``kei import claude-code`` of a tree of Claude Code transcripts: lines/s, MB/s, peak memory.

The tree (built once, cached under /tmp): sessions of about 4 MB in Claude Code's JSONL
format, each with two sub-agent files, in several project folders. A third of the lines
are assistant messages with ``message.usage`` (cache reads and 5-minute/1-hour cache
writes), one in ten of those written twice as streaming does; the rest are prompts and
``tool_result`` lines carrying 1-4 KB of file contents, about 2 KB a line. Each session
starts its two sub-agents with Task calls whose results name them, so the import links
their costs and closes them. kei: the real command in a fresh process (discover, parse,
dedupe, price, fork the session and sub-agent agents, signed appends, close the
sub-agents), then again (nothing new: every line is read, parsed and recognised). Parse
only: kei's line parser over the same files in this process, without the ledger. Raw
limit: the plain loop any importer pays, reading each line and ``json.loads`` it, run
before and after kei (the faster of the two counts); per CPU second too, which a busy
machine disturbs less. Peak memory is each child's own ``ru_maxrss``; run two sizes to
see it stay flat.

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
    root = BENCH_TMP / f"claude-projects-v2-{mb}mb"  # v2: with Task calls and results
    done = root / ".complete"
    if done.exists():
        return root
    rng, size, n = random.Random(11), 0, 0
    while size < mb * 1_000_000:
        session = f"{n:08d}-0000-4000-8000-{n:012d}"
        folder = root / f"-home-dev-proj{n % 7}"
        agents = [f"a{n}x{k}" for k in range(2)]
        size += _write(folder / f"{session}.jsonl", rng, session, n, None, tasks=agents)
        for agent in agents:
            sub = folder / session / "subagents" / f"agent-{agent}.jsonl"
            size += _write(sub, rng, session, n, agent, SESSION_BYTES // 8)
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
    tasks: list[str] | None = None,
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    size, i = 0, 0
    with path.open("w") as out:
        while size < cap:
            started = _task_lines(session, n, i, tasks or []) if i == 1 else []
            for line in [*_lines(rng, session, n, i, agent), *started]:
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


def _task_lines(session: str, n: int, i: int, agents: list[str]) -> list[dict[str, object]]:
    """Each sub-agent's Task call (an assistant line) and its result naming it."""
    ts = f"2026-11-{1 + n % 28:02d}T00:00:{i % 60:02d}.500Z"
    base = {"parentUuid": None, "isSidechain": False, "userType": "external", "type": "user",
            "cwd": f"/home/dev/proj{n % 7}", "sessionId": session, "timestamp": ts}  # fmt: skip
    found: list[dict[str, object]] = []
    for agent in agents:
        call = f"toolu_{n}_{agent}"
        usage = {"input_tokens": 3, "output_tokens": 90, "cache_read_input_tokens": 20_000}
        found.append({**base, "type": "assistant", "requestId": f"req_task_{call}",
                      "uuid": f"t-{call}", "message": {
                          "id": f"msg_task_{call}", "role": "assistant", "model": MODELS[0],
                          "usage": usage, "content": [{"type": "tool_use", "id": call,
                                                       "name": "Task", "input": {
                                                           "subagent_type": "Explore",
                                                           "prompt": "look"}}]}})  # fmt: skip
        found.append({**base, "uuid": f"r-{call}", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call,
             "content": [{"type": "text", "text": f"done\nagentId: {agent}"}]}]},
            "toolUseResult": {"status": "completed", "agentId": agent,
                              "content": [{"type": "text", "text": "done"}]}})  # fmt: skip
    return found


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl"))


def run(root: Path, env: dict[str, str]) -> tuple[Run, dict[str, object]]:
    """The import in a fresh process (its own time, CPU and peak RSS) and its report."""
    done = timed_child([KEI, "import", "claude-code", str(root), "--json"], env)
    return done, json.loads(done.stdout)


def raw_rate(paths: list[Path]) -> tuple[float, float]:
    """Read + ``json.loads`` of every line: lines per second and per CPU second."""
    started, cpu, n = time.perf_counter(), time.process_time(), 0
    for path in paths:
        with path.open("rb") as fh:
            for line in fh:
                json.loads(line)
                n += 1
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


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
    before = raw_rate(paths)
    with initialised_home("kei-claude-import") as env:
        first_run, first = run(root, env)
        again_run, again = run(root, env)
        daily = [KEI, "cost", "report", "--by", "day", "--json"]
        cold, warm = timed_child(daily, env), timed_child(daily, env)
    after = raw_rate(paths)  # the loop before and after kei: the faster of each counts
    raw, raw_cpu = max(before[0], after[0]), max(before[1], after[1])
    first_s, again_s = first_run.seconds, again_run.seconds
    lines = int(str(first["lines"]))
    print(f"kei import claude-code of {mb:.0f} MB, {len(paths)} files, {lines:,} lines: "
          f"{first['events_appended']} cost events, {first['agents_forked']} agents forked, "
          f"{first.get('agents_closed', 0)} closed; again: {again['events_appended']} "
          f"appended; read + json.loads: {raw:,.0f} lines/s, {raw * mb / lines:.1f} MB/s")  # fmt: skip
    figures = [
        Figure("claude-import", "lines/s, first import, vs read + json.loads",
               lines / first_s, raw, 0.5, "lines/s"),
        Figure("claude-import", "lines per CPU s, first import, vs json.loads",
               lines / first_run.cpu_s, raw_cpu, None, "lines/s"),
        Figure("claude-import", "MB/s, first import, vs read + json.loads", mb / first_s,
               raw * mb / lines, None, "MB/s"),
        Figure("claude-import", "lines/s, again (nothing new), vs read + json.loads",
               lines / again_s, raw, 0.5, "lines/s"),
        Figure("claude-import", "lines per CPU s, again, vs json.loads",
               lines / again_run.cpu_s, raw_cpu, None, "lines/s"),
        Figure("claude-import", "lines/s, parse only, vs read + json.loads",
               parse_rate(paths), raw, None, "lines/s"),
        Figure("claude-import", "peak RSS, first import", first_run.peak_mb, None, None, "MB",
               higher=False),
        Figure("claude-import", "peak RSS, again", again_run.peak_mb, None, None, "MB",
               higher=False),
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
