"""PostgreSQL, 4 writer processes, batches of 100: kei vs a plain psycopg chained-insert loop.

- kei: 4 processes, each with its own ``Ledger`` on one database, appending its
  share in batches of 100 (own streams, so no version clashes). kei signs outside
  the lock; inside eventsourcing's ``LOCK TABLE ... IN EXCLUSIVE MODE`` it inserts
  the events, reads the chain head, hashes and inserts the chain rows.
- raw limit: 4 processes with psycopg 3, each transaction of 100 events:
  ``pg_advisory_xact_lock``, read the head (a separate statement after the lock),
  sha256-chain, ``executemany`` into one table, commit. Signing (PyNaCl, over the
  payload) happens **outside** the lock, as kei does, so both designs use both
  cores for signatures and serialise only the chain step.

Target: kei >= 0.8 x raw. Uses a throwaway database on ``KEI_BENCH_POSTGRES_URL``
(default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from common import (
    Figure,
    RawChain,
    median_rates,
    new_events,
    parse_args,
    raw_events,
    report,
    scratch_pg,
)
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.log.keys import SigningKey

WRITERS = 4
BATCH = 100
RAW_TABLE = (
    "CREATE TABLE raw_events (seq bigint PRIMARY KEY, stream text, version int, type text, "
    "payload bytea, prev_hash bytea, hash bytea, sig bytea)"
)
RAW_INSERT = (
    "INSERT INTO raw_events (seq, stream, version, type, payload, prev_hash, hash, sig) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def _share(evs: Sequence[NewEvent], writer: int) -> list[NewEvent]:
    """This writer's events, on streams of its own."""
    return [NewEvent(f"w{writer}-{e.stream}", e.payload) for e in evs[writer::WRITERS]]


def kei_writer(url: str, seed: bytes, writer: int, evs: Sequence[NewEvent], start: Any) -> None:
    ledger = Ledger.open(url, key=SigningKey(seed, name="bench"))
    mine = _share(evs, writer)
    start.wait()
    for i in range(0, len(mine), BATCH):
        ledger.append(mine[i : i + BATCH])
    ledger.close()


def raw_writer(url: str, seed: bytes, writer: int, evs: Sequence[NewEvent], start: Any) -> None:
    import psycopg

    mine = raw_events(_share(evs, writer))
    chain = RawChain(seed)
    with psycopg.connect(url) as conn:
        start.wait()
        for i in range(0, len(mine), BATCH):
            _raw_txn(conn, chain, mine[i : i + BATCH], chain.key.sign)


def _raw_txn(conn: Any, chain: RawChain, evs: Sequence[Any], sign: Callable[[bytes], Any]) -> None:
    """Sign outside the lock; lock, read the head, chain and insert inside it."""
    encode = msgspec.msgpack.encode
    signed = []
    for e in evs:
        body = encode(e.payload)
        version = chain.versions[e.stream] = chain.versions.get(e.stream, 0) + 1
        signed.append((e.stream, version, e.type, body, sign(body).signature))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(42)")
        cur.execute("SELECT seq, hash FROM raw_events ORDER BY seq DESC LIMIT 1")
        head = cur.fetchone()
        seq, prev = (head[0] + 1, bytes(head[1])) if head else (0, bytes(32))
        rows = []
        for stream, version, type_, body, sig in signed:
            digest = hashlib.sha256(prev + body).digest()
            rows.append((seq, stream, version, type_, body, prev, digest, sig))
            prev, seq = digest, seq + 1
        cur.executemany(RAW_INSERT, rows)


def run_processes(target: Callable[..., None], url: str, evs: Sequence[NewEvent]) -> float:
    """Start the writers, release them together; events per second of wall time."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WRITERS + 1)
    seed = b"\x07" * 32
    procs = [ctx.Process(target=target, args=(url, seed, w, evs, start)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a writer failed with exit code {p.exitcode}")
    return len(evs) / (time.perf_counter() - began)


def run_kei(evs: Sequence[NewEvent]) -> float:
    with scratch_pg() as url:
        ledger = Ledger.open(url, key=SigningKey(b"\x07" * 32, name="bench"), create=True)
        ledger.init("bench")
        ledger.close()
        return run_processes(kei_writer, url, evs)


def run_raw(evs: Sequence[NewEvent]) -> float:
    import psycopg

    with scratch_pg() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(RAW_TABLE)
        return run_processes(raw_writer, url, evs)


def main() -> None:
    args = parse_args(__doc__ or "", default_events=20_000)
    evs = new_events(args.events)
    rates = median_rates({"raw": lambda: run_raw(evs), "kei": lambda: run_kei(evs)}, args.reps)
    print(f"append, PostgreSQL, {WRITERS} writers, batches of {BATCH}, {args.events:,} events")
    report(
        [
            Figure(
                "append-pg",
                f"kei {WRITERS} writers x batches of {BATCH} vs raw psycopg (sign outside lock)",
                rates["kei"],
                rates["raw"],
                0.8,
            )
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
