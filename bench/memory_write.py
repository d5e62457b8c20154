"""Memory writes with and without the leak matrix on the write path.

kei: ``Ledger.append`` of ``memory.written`` events carrying realistic notes (200-600
characters of prose and code, one in fifty with a database URL whose password the
matrix redacts), once with the rules shipped with kei and once with no rules
(``Matrix(())``), in the same run on fresh SQLite files. Two shapes: one write per
append (``synchronous=FULL``: an fsync each, as ``kei memory write`` does) and batches
of 100 (where CPU, not the disk, is the limit). The target is with ≥ 0.7 × without.

    .venv/bin/python bench/memory_write.py --events 3000
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common import Figure, report, scratch_dir
from kei.adapters.files.leaks import shipped_matrix
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events.memory import MemoryWritten, memory_stream
from kei.domain.leaks.matrix import Matrix
from kei.domain.log.keys import SigningKey

WORDS = ("retry", "backoff", "jitter", "cargo", "test", "tokenizer", "unicode", "deploy",
         "the", "a", "is", "with", "when", "agent", "session", "timeout", "fn", "let",
         "return", "Result<T>", "x.unwrap()", "self.cache", "src/retry.rs:42")  # fmt: skip


def notes(count: int) -> list[NewEvent]:
    rng = random.Random(3)
    out = []
    for i in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90)))
        if i % 50 == 0:
            words += " db at postgres://app:Xq9v2LmT7@db.internal/app"
        payload = MemoryWritten(namespace="bench", key=f"note-{i}", value=words,
                                tags=("bench",))  # fmt: skip
        out.append(NewEvent(memory_stream("bench", f"note-{i}"), payload))
    return out


def rate(folder: Path, name: str, matrix: Matrix, todo: list[NewEvent], batch: int) -> float:
    key = SigningKey(b"\x05" * 32, name="bench")
    with Ledger.open(f"sqlite:///{folder / name}.db", key=key, create=True, leaks=matrix) as led:
        led.init("bench")
        started = time.perf_counter()
        for i in range(0, len(todo), batch):
            led.append(todo[i : i + batch])
        return len(todo) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    todo, rules = notes(args.events), shipped_matrix()
    figures = []
    with scratch_dir("kei-memory-bench") as folder:
        for batch, label in ((1, "one write per append (fsync each)"), (100, "batches of 100")):
            small = todo[: max(args.events // 5, 200)] if batch == 1 else todo
            plain = rate(folder, f"plain-{batch}", Matrix(()), small, batch)
            scanned = rate(folder, f"scanned-{batch}", rules, small, batch)
            figures.append(Figure("memory", f"writes/s with rules vs without, {label}",
                                  scanned, plain, 0.7))  # fmt: skip
    print(f"memory writes of 200-600 character notes ({len(rules.rules)} shipped rules)")
    report(figures, args.json)


if __name__ == "__main__":
    main()
