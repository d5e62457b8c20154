"""The Merkle tree at scale: proofs, the checkpoint root, and verify-chain's tree pass.

- tree figures run on a chain-only SQLite store of ``--events`` leaves (default
  1,000,000; random 32-byte entry hashes, which is all the tree reads), built in the
  bench's scratch folder:
  * first tree build: the lazy fill of ``kei_merkle_nodes`` (2**8 and 2**16 tiles),
    once per ledger, outside any append;
  * inclusion proof: a fresh ``StoredTree`` per proof (nothing cached in memory),
    random leaf, tree of the whole log, proof checked; median of 200;
  * consistency proof: random old size to the whole log, checked; median of 200;
  * checkpoint root: the tree root of the whole log from the stored tiles (what a
    root costs once the tiles exist; ``kei checkpoint`` itself also re-checks the
    whole log first, see below); median of 50;
  * tree pass: the ``CompactRange`` over every chain hash that ``verify-chain`` adds,
    in events/s, against the raw limit: the same SHA-256 calls in a bare loop.
- ``--ledger``: also on a real signed ledger (built once by ``bench/verify_chain.py``'s
  cache): ``kei verify-chain --jobs 2`` with the tree (this branch) and without it
  (``--base-src DIR``: the ``src`` folder of the commit before, on PYTHONPATH), in the
  same run, alternating, against the raw limit (PyNaCl verify x 2, issue target 0.85);
  and ``Ledger.checkpoint()`` wall time.

The machine is shared with other sessions while this runs: figures are noisy; the
with/without comparison alternates within one run so both see the same load.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import statistics
import time
from pathlib import Path

from common import BENCH_TMP, Figure, parse_args, report, scratch_pg
from kei.adapters.store import open_store
from kei.app.ledger.merkle_tree import StoredTree, head_size
from kei.app.ledger.verification import VerifyReport, _recompute_tree
from kei.domain.log.merkle import consistency_proof, inclusion_proof, verify_inclusion

PROOFS = 200


def chain_only(path: Path, n: int) -> str:
    """A store whose kei_chain holds ``n`` rows of random hashes (built once per size)."""
    url = f"sqlite:///{path}"
    if path.exists():
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE IF EXISTS kei_merkle_nodes")
        return url
    store = open_store(url, create=True)
    store.create()
    store.close()
    rng = random.Random(11)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO kei_chain VALUES (?,?,?,?)",
            ((i + 1, i, bytes(32), rng.randbytes(32)) for i in range(n)),
        )
    conn.close()
    return url


def chain_only_pg(url: str, n: int) -> str:
    """The same in a throwaway PostgreSQL database (COPY)."""
    import psycopg

    store = open_store(url, create=True)
    store.create()
    store.close()
    rng = random.Random(11)
    sql = "COPY kei_chain (position, seq, prev_hash, hash) FROM STDIN"
    with psycopg.connect(url) as pg, pg.cursor() as cur, cur.copy(sql) as copy:
        for i in range(n):
            copy.write_row((i + 1, i, bytes(32), rng.randbytes(32)))
    return url


def ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def tree_figures(url: str, n: int, label: str) -> list[Figure]:
    store = open_store(url)
    rng = random.Random(3)
    try:
        started = time.perf_counter()
        StoredTree(store).prepare(n)
        build = time.perf_counter() - started
        inc, con, roots = [], [], []
        for _ in range(PROOFS):
            index = rng.randrange(n)
            started = time.perf_counter()
            tree = StoredTree(store)
            tree.prepare(head_size(store))
            path_ = inclusion_proof(tree, index, n)
            top = tree.root()
            ok = verify_inclusion(index, n, tree.leaf(index), path_, top)
            inc.append(time.perf_counter() - started)
            assert ok
            old = rng.randrange(1, n)
            started = time.perf_counter()
            tree = StoredTree(store)
            tree.prepare(n)
            consistency_proof(tree, old, n)
            con.append(time.perf_counter() - started)
        for _ in range(50):
            started = time.perf_counter()
            tree = StoredTree(store)
            tree.prepare(head_size(store))
            tree.root()
            roots.append(time.perf_counter() - started)
        report_ = VerifyReport(url, None)
        started = time.perf_counter()
        _recompute_tree(store, report_, None, 5_000)
        tree_pass = n / (time.perf_counter() - started)
        hashes = [r[0] for r in store.select("SELECT hash FROM kei_chain ORDER BY position")]
    finally:
        store.close()
    raw = raw_tree_rate(hashes)
    return [
        Figure("merkle", f"{label}: first tree build, {n:,} leaves", build, unit="s",
               higher=False),
        Figure("merkle", f"{label}: inclusion proof (fresh tree, checked)", ms(inc), target=5,
               unit="ms", higher=False),
        Figure("merkle", f"{label}: consistency proof (fresh tree)", ms(con), unit="ms",
               higher=False),
        Figure("merkle", f"{label}: checkpoint root from stored tiles", ms(roots), target=50,
               unit="ms", higher=False),
        Figure("merkle", f"{label}: verify-chain tree pass vs bare SHA-256 loop", tree_pass,
               raw),
    ]  # fmt: skip


def raw_tree_rate(hashes: list[bytes]) -> float:
    """The same hashing as the tree pass, as a bare loop over a list in memory."""
    sha = hashlib.sha256
    started = time.perf_counter()
    stack: list[bytes] = []
    for i, h in enumerate(hashes):
        node = sha(b"\x00" + h).digest()
        n = i
        while n & 1:
            node = sha(b"\x01" + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
    return len(hashes) / (time.perf_counter() - started)


def ledger_figures(events: int, base_src: Path | None, reps: int) -> list[Figure]:
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.keys import SigningKey
    from verify_chain import cached_ledger, raw_verify_rate, run_cli

    url = cached_ledger(events)
    with_tree, without, raw, checkpoint = [], [], [], []
    for _ in range(reps):
        raw.append(2 * raw_verify_rate(url))
        with_tree.append(run_cli(url, "--jobs", "2")[0])
        if base_src is not None:
            os.environ["PYTHONPATH"] = str(base_src)
            try:
                without.append(run_cli(url, "--jobs", "2")[0])
            finally:
                del os.environ["PYTHONPATH"]
        with Ledger.open(url, key=SigningKey(b"\x05" * 32, name="bench")) as ledger:
            started = time.perf_counter()
            ledger.checkpoint()
            checkpoint.append(time.perf_counter() - started)
    figures = [
        Figure("merkle", "verify-chain --jobs 2 with tree vs PyNaCl x 2", _med(with_tree),
               _med(raw), 0.85),
        Figure("merkle", "kei checkpoint (incl. its --quick check of the log)", _med(checkpoint),
               unit="s", higher=False),
    ]  # fmt: skip
    if without:
        figures.insert(
            1,
            Figure("merkle", "verify-chain --jobs 2 before the tree vs PyNaCl x 2",
                   _med(without), _med(raw), 0.85),
        )  # fmt: skip
        figures.insert(
            2,
            Figure("merkle", "verify-chain with tree / before", _med(with_tree), _med(without)),
        )
    return figures


def _med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    args = parse_args(
        __doc__ or "",
        default_events=1_000_000,
        ledger={"action": "store_true", "help": "also verify-chain/checkpoint on a real ledger"},
        base_src={"type": Path, "default": None, "help": "src folder of the commit before"},
        pg={"action": "store_true", "help": "also the tree figures on PostgreSQL"},
    )
    path = BENCH_TMP / f"merkle-chain-{args.events}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = tree_figures(chain_only(path, args.events), args.events, "SQLite")
    if args.pg:
        with scratch_pg() as url:
            figures += tree_figures(chain_only_pg(url, args.events), args.events, "PostgreSQL")
    if args.ledger:
        figures += ledger_figures(args.events, args.base_src, args.reps)
    print(f"Merkle tree on {args.events:,} events; shared machine, noisy figures")
    report(figures, args.json)


if __name__ == "__main__":
    main()
