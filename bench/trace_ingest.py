"""``kei retro ingest`` of a 100 MB Claude Code transcript: lines/s and peak memory.

The transcript (built once, cached under /tmp): a long session in Claude Code's JSONL
format, prompts, assistant text with ``tool_use`` blocks (Read, Edit, Bash, Grep) and
``tool_result`` lines carrying 1-4 KB of file contents and command output, about
2 KB a line. kei: the real command in a fresh process (parse, injection guard, leak
matrix, content hashes, signed appends in batches, the ``traces`` read model caught up
before the hashes are read), then the same file again (nothing new: every line is
read, hashed and skipped). Raw limit: the plain loop any ingester pays, reading each
line and ``json.loads`` it, in this process. Peak memory is the child's ``ru_maxrss``.

    .venv/bin/python bench/trace_ingest.py --mb 100
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import BENCH_TMP, Figure, initialised_home, report

KEI = str(Path(sys.executable).with_name("kei"))
FILES = ("src/retry.rs", "src/tokenizer.py", "tests/test_retry.rs", "README.md", "Cargo.toml")
WORDS = ("the", "retry", "backoff", "fn", "let", "self", "return", "Ok(())", "assert_eq!",
         "tokio::time::sleep", "Duration::from_millis", "if", "else", "match", "error")  # fmt: skip


def transcript(mb: int) -> Path:
    BENCH_TMP.mkdir(parents=True, exist_ok=True)
    path = BENCH_TMP / f"transcript-{mb}mb.jsonl"
    if path.exists() and path.stat().st_size >= mb * 1_000_000:
        return path
    rng, size, n = random.Random(8), 0, 0
    with path.open("w") as out:
        while size < mb * 1_000_000:
            line = json.dumps(_line(rng, n)) + "\n"
            out.write(line)
            size, n = size + len(line), n + 1
    return path


def _line(rng: random.Random, n: int) -> dict[str, object]:
    ts = f"2026-11-25T{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.000Z"
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 600)))
    tool = rng.choice(("Read", "Edit", "Bash", "Grep"))
    content: object
    if n % 3 == 0:
        kind, content = "user", f"step {n}: {text[:300]}"
    elif n % 3 == 1:
        kind = "assistant"
        content = [{"type": "text", "text": text[:200]},
                   {"type": "tool_use", "id": f"t{n}", "name": tool,
                    "input": {"file_path": "/repo/" + rng.choice(FILES)}}]  # fmt: skip
    else:
        kind = "user"
        content = [{"type": "tool_result", "tool_use_id": f"t{n - 1}", "content": text,
                    "is_error": rng.random() < 0.05}]  # fmt: skip
    return {"type": kind, "timestamp": ts, "sessionId": "bench", "cwd": "/repo",
            "message": {"role": kind, "content": content}}  # fmt: skip


def ingest(path: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run([KEI, "retro", "ingest", str(path), "--session", "s", "--json"],
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-800:])
    return time.perf_counter() - started, json.loads(done.stdout)


def raw_rate(path: Path) -> float:
    started, n = time.perf_counter(), 0
    with path.open("rb") as fh:
        for line in fh:
            json.loads(line)
            n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    path = transcript(args.mb)
    with initialised_home("kei-ingest") as env:
        first_s, first = ingest(path, env)
        again_s, again = ingest(path, env)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = int(str(first["lines"]))
    mb = path.stat().st_size / 1e6
    print(f"kei retro ingest of {mb:.0f} MB, {lines:,} lines: {first['appended']} events "
          f"appended, {first['rejected']} refused; again: {again['appended']} appended")  # fmt: skip
    report(
        [
            Figure(
                "ingest",
                "lines/s, first ingest, vs read + json.loads",
                lines / first_s,
                raw_rate(path),
                None,
                "lines/s",
            ),
            Figure("ingest", "MB/s, first ingest", mb / first_s, None, None, "MB/s"),
            Figure(
                "ingest",
                "lines/s, the same file again (nothing new)",
                lines / again_s,
                None,
                None,
                "lines/s",
            ),
            Figure("ingest", "peak memory (child)", peak, None, 300.0, "MB", higher=False),
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
