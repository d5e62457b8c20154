"""Shared helpers for kei's benchmarks: payloads, raw-limit loops, timing, tables.

Every benchmark runs kei and the matching "raw limit" loop in the same process run,
on the same payloads, and prints the ratio kei/raw next to the target from issue 2.
Scripts are plain Python: ``.venv/bin/python bench/<name>.py [--events N]``.

Rules the scripts follow:

- Payloads are real kei Structs (``CostRecorded`` mostly, some ``AgentForked``) over
  1,000 agents, so a batch of 100 touches about 95 streams, the hard case for
  per-stream versions.
- Every repetition starts from a fresh database; kei and the raw loop alternate and
  the median of the repetitions is reported, because this is a shared 2-vCPU VM.
- ``--json FILE`` appends each result line to FILE, for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import nacl.signing

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import AgentForked, CostRecorded, Payload, TokenUsage, event_type_of
from kei.domain.log.keys import SigningKey

PG_URL = os.environ.get("KEI_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AGENTS = 1000
MODELS = ("claude-sonnet-4", "claude-haiku-4", "gpt-5-mini", "llama-3.3-70b")
BENCH_TMP = Path(os.environ.get("KEI_BENCH_TMP", "/tmp/kei-bench"))
_ENCODER = msgspec.msgpack.Encoder()


# -- payloads -----------------------------------------------------------------


def payload(rng: random.Random, n: int) -> tuple[str, Payload]:
    """One realistic event: (stream, payload); about 1 in 10 is an agent fork."""
    agent = f"agent-{rng.randrange(AGENTS):04d}"
    if n % 10 == 0:
        parent = f"agent-{rng.randrange(AGENTS):04d}"
        return agent, AgentForked(
            agent_id=agent,
            branch=f"kei/{agent}/task-{n}",
            parent_agent_id=parent,
            parent_branch=f"kei/{parent}/main",
            spec_sha=hashlib.sha256(str(n).encode()).hexdigest(),
            worktree=f"/srv/worktrees/{agent}",
            creator="orchestrator",
        )
    return agent, CostRecorded(
        agent_id=agent,
        provider="anthropic" if n % 3 else "openai",
        model=MODELS[n % len(MODELS)],
        micro_cents=rng.randrange(1, 50_000_000),
        usage=TokenUsage(
            input_tokens=rng.randrange(100, 20_000),
            output_tokens=rng.randrange(10, 4_000),
            cache_read_tokens=rng.randrange(0, 50_000),
        ),
        price_entry_id=f"price-{n % 17}",
        price_entry_hash="sha256:" + hashlib.sha256(str(n % 17).encode()).hexdigest(),
    )


def new_events(count: int, *, seed: int = 7) -> list[NewEvent]:
    rng = random.Random(seed)
    return [NewEvent(*payload(rng, n)) for n in range(count)]


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class RawEvent:
    """What the raw loops start from: the same payload, already a Struct."""

    stream: str
    type: str
    payload: Payload


def raw_events(evs: Sequence[NewEvent]) -> list[RawEvent]:
    return [RawEvent(e.stream, event_type_of(e.payload).name, e.payload) for e in evs]


# -- the raw limit: encode + chain + sign, nothing else ------------------------


class RawChain:
    """The plain loop the issue measures kei against, minus the database.

    Per event: msgspec-encode the payload, ``sha256(prev + payload)``, PyNaCl-sign
    the payload bytes; the row is (stream, version, type, payload, prev, hash, sig).
    Versions come from a dict, as a hand-written loop would keep them.
    """

    def __init__(self, seed: bytes = b"\x01" * 32) -> None:
        self.key = nacl.signing.SigningKey(seed)
        self.prev = bytes(32)
        self.versions: dict[str, int] = {}

    def rows(self, evs: Sequence[RawEvent]) -> list[tuple[Any, ...]]:
        encode, sign, sha256 = _ENCODER.encode, self.key.sign, hashlib.sha256
        versions, prev, out = self.versions, self.prev, []
        for e in evs:
            body = encode(e.payload)
            digest = sha256(prev + body).digest()
            version = versions[e.stream] = versions.get(e.stream, 0) + 1
            out.append((e.stream, version, e.type, body, prev, digest, sign(body).signature))
            prev = digest
        self.prev = prev
        return out


RAW_SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS raw_events (seq INTEGER PRIMARY KEY, stream TEXT, "
    "version INTEGER, type TEXT, payload BLOB, prev_hash BLOB, hash BLOB, sig BLOB)"
)
RAW_SQLITE_INSERT = (
    "INSERT INTO raw_events (stream, version, type, payload, prev_hash, hash, sig) "
    "VALUES (?,?,?,?,?,?,?)"
)


# kei's table shape without kei: a rowid events table with UNIQUE(stream, version)
# (eventsourcing's) and a separate chain table keyed by position.
SHAPED_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS ev (stream TEXT, version INTEGER, type TEXT, state BLOB, "
    "PRIMARY KEY (stream, version))",
    "CREATE TABLE IF NOT EXISTS ch (position INTEGER PRIMARY KEY, seq INTEGER NOT NULL, "
    "prev_hash BLOB NOT NULL, hash BLOB NOT NULL)",
)


def raw_sqlite(
    path: Path, synchronous: str = "FULL", *, shaped: bool = False
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    for statement in SHAPED_SQLITE_TABLES if shaped else (RAW_SQLITE_TABLE,):
        conn.execute(statement)
    return conn


def raw_sqlite_append(conn: sqlite3.Connection, chain: RawChain, evs: Sequence[RawEvent]) -> None:
    """One transaction: encode, chain, sign and insert ``evs``."""
    rows = chain.rows(evs)
    conn.execute("BEGIN")
    conn.executemany(RAW_SQLITE_INSERT, rows)
    conn.execute("COMMIT")


def shaped_sqlite_append(
    conn: sqlite3.Connection, chain: RawChain, evs: Sequence[RawEvent]
) -> None:
    """The same work into kei's table shape: events, then their chain rows."""
    rows = chain.rows(evs)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO ev VALUES (?,?,?,?)", [(r[0], r[1], r[2], r[6] + r[3]) for r in rows]
    )
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    first_seq = last - len(rows)
    conn.executemany(
        "INSERT INTO ch VALUES (?,?,?,?)",
        [(first_seq + 1 + i, first_seq + i, r[4], r[5]) for i, r in enumerate(rows)],
    )
    conn.execute("COMMIT")


# -- kei ------------------------------------------------------------------------


def kei_ledger(url: str, key: SigningKey | None = None, *, parallel: bool = False) -> Ledger:
    """A fresh, initialised ledger (the genesis is not timed)."""
    ledger = Ledger.open(
        url, key=key or SigningKey.generate(name="bench"), create=True, parallel_signing=parallel
    )
    ledger.init("bench")
    return ledger


@contextlib.contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A throwaway folder under /tmp, removed afterwards."""
    BENCH_TMP.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=BENCH_TMP))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def initialised_home(name: str) -> Iterator[dict[str, str]]:
    """The environment of a throwaway ``KEI_HOME`` whose SQLite ledger ``kei init`` made:
    where a benchmark runs the ``kei`` beside this Python."""
    import subprocess

    with scratch_dir(name) as home:
        env = {**os.environ, "KEI_HOME": str(home), "KEI_DB": str(home / "ledger.db")}
        kei = str(Path(sys.executable).with_name("kei"))
        subprocess.run([kei, "init"], env=env, check=True, capture_output=True)
        yield env


@contextlib.contextmanager
def scratch_pg() -> Iterator[str]:
    """A throwaway PostgreSQL database on the bench server, dropped afterwards."""
    import psycopg

    name = f"kei_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- timing and reporting --------------------------------------------------------


def busy_cores(window: float = 0.5) -> float:
    """How many cores the whole machine kept busy over ``window`` seconds."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(window)
    busy1, total1 = sample()
    ncpu = os.cpu_count() or 1
    return ncpu * (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(max_wait: float = 120.0, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until other work leaves the cores free; the load seen.

    The machine is shared with other sessions; a figure taken while another
    process holds a core is not a figure about kei.
    """
    deadline = time.monotonic() + max_wait
    load = busy_cores()
    while load > threshold and time.monotonic() < deadline:
        load = busy_cores(1.0)
    return load


def timed(fn: Callable[[], int]) -> float:
    """Events per second of ``fn``, which returns how many events it handled."""
    start = time.perf_counter()
    count = fn()
    return count / (time.perf_counter() - start)


def median_rates(runs: dict[str, Callable[[], float]], reps: int) -> dict[str, float]:
    """Run each rate function ``reps`` times, interleaved; the median of each."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            wait_quiet()
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


@dataclass(frozen=True, slots=True)
class Figure:
    """One line of the results table."""

    bench: str
    measure: str
    kei: float
    raw: float | None = None
    target: float | None = None
    unit: str = "events/s"
    note: str = ""
    higher: bool = True  # False for latencies and memory: the target is a ceiling

    @property
    def ratio(self) -> float | None:
        return None if not self.raw else self.kei / self.raw

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.raw:
            return self.kei / self.raw >= self.target
        return self.kei >= self.target if self.higher else self.kei <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        if self.raw:
            return f">= {self.target:g}x"
        return f"{'>=' if self.higher else '<'} {_fmt(self.target)}"


def parse_args(description: str, default_events: int, **extra: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=default_events, help="events per run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median is reported)")
    parser.add_argument("--json", type=Path, default=None, help="append results to this file")
    for flag, kwargs in extra.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", **kwargs)
    return parser.parse_args()


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.3f}"
    if value >= 1000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.1f}"


def report(figures: Sequence[Figure], json_path: Path | None = None) -> None:
    """Print the table; optionally append the figures as JSON lines."""
    header = ("measure", "kei", "raw limit", "kei/raw", "target", "met", "unit")
    rows = [header]
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        rows.append(
            (
                f.measure,
                _fmt(f.kei),
                _fmt(f.raw),
                _fmt(f.ratio, "ratio"),
                f.target_text,
                met,
                f.unit,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for f in figures:
        if f.note:
            print(f"  note ({f.measure}): {f.note}")
    sys.stdout.flush()
    if json_path is not None:
        with json_path.open("a", encoding="utf-8") as out:
            for f in figures:
                line = asdict(f) | {"ratio": f.ratio, "met": f.met, "at": time.time()}
                out.write(json.dumps(line) + "\n")


def compile_kei() -> None:
    """Write kei's bytecode, as ``pip install`` does for a user.

    An editable checkout run under ``PYTHONDONTWRITEBYTECODE=1`` (as on these
    machines) would otherwise compile every kei module from source on every command,
    about 0.1 s that no installed kei pays.
    """
    import kei

    compileall.compile_dir(Path(kei.__file__).parent, quiet=1)
