"""Merkle proofs from real stores (SQLite and PostgreSQL) and through the CLI.

The stored subtree hashes must give the same roots and proofs as the leaves alone
(at 2**8 and 2**16 tile levels), an edited stored hash is a verify-chain finding and
never yields a proof that holds against a real checkpoint, and ``kei prove`` /
``kei verify-proof`` round-trip on both stores; ``verify-proof`` runs without a store.
"""

from __future__ import annotations

import base64
import json
import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import cli_env, in_process, run_sql
from kei.adapters.cli.exits import Exit
from kei.adapters.files.keyfile import load_key
from kei.adapters.store import open_store
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.merkle_tree import StoredTree
from kei.app.ledger.proving import prove_consistency, prove_inclusion
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.checkpoint import (
    note_key_id,
    parse_checkpoint,
    parse_vkey,
    sign_checkpoint,
)
from kei.domain.log.findings import FindingKind
from kei.domain.log.merkle import (
    LeafList,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
)
from kei.errors import KeiError, VerificationError


def append(ledger: Ledger, n: int) -> None:
    while n > 0:
        m = min(n, 500)
        n -= m
        ledger.append(
            [NewEvent(f"s-{i % 7}", events.AgentMerged(agent_id=f"a-{i % 7}")) for i in range(m)]
        )


def chain_hashes(ledger: Ledger) -> list[bytes]:
    rows = ledger.store.select("SELECT hash FROM kei_chain ORDER BY position")
    return [bytes(r[0]) for r in rows]


def fill_chain(url: str, hashes: list[bytes]) -> None:
    """Chain rows only (the tree reads nothing else), written straight to the table."""
    store = open_store(url, create=True)
    store.create()
    store.close()
    rows = [(i + 1, i, bytes(32), h) for i, h in enumerate(hashes)]
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        with conn:
            conn.executemany("INSERT INTO kei_chain VALUES (?,?,?,?)", rows)
        conn.close()
        return
    import psycopg

    sql = "COPY kei_chain (position, seq, prev_hash, hash) FROM STDIN"
    with psycopg.connect(url) as pg, pg.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def test_stored_subtrees_give_the_roots_and_proofs_of_the_leaves(store_url: str) -> None:
    n = (1 << 16) + 300
    hashes = [os.urandom(32) for _ in range(n)]
    fill_chain(store_url, hashes)
    memory = LeafList([leaf_hash(h) for h in hashes])
    store = open_store(store_url)
    try:
        tree = StoredTree(store)
        tree.prepare(n)
        levels = store.select("SELECT level, count(*) FROM kei_merkle_nodes GROUP BY level")
        assert sorted((int(a), int(b)) for a, b in levels) == [(8, n >> 8), (16, 1)]
        rng = random.Random(7)
        for size in [1, 255, 256, 257, 65535, 65536, 65537, n, *rng.sample(range(1, n), 5)]:
            assert root(tree, size) == root(memory, size), size
            index = rng.randrange(size)
            assert inclusion_proof(tree, index, size) == inclusion_proof(memory, index, size)
            old = rng.randrange(size + 1)
            assert consistency_proof(tree, old, size) == consistency_proof(memory, old, size)
        again = StoredTree(store)
        again.prepare(n)  # nothing left to add: the rows are reused
        assert again.root() == root(memory, n)
    finally:
        store.close()


@pytest.fixture
def grown(ledger: Ledger) -> Ledger:
    append(ledger, 700)
    return ledger


def test_proofs_from_a_ledger_hold_and_match_its_checkpoints(grown: Ledger) -> None:
    old = parse_checkpoint(grown.checkpoint())
    append(grown, 333)
    new = parse_checkpoint(grown.checkpoint())
    leaves = LeafList([leaf_hash(h) for h in chain_hashes(grown)])
    assert (old.root_hash, new.root_hash) == (root(leaves, old.size), root(leaves, new.size))
    position = [e.position for e in grown.read()][400]
    proof = prove_inclusion(grown.store, grown.ledger_id, position, old)
    assert (proof.leaf_index, proof.tree_size, proof.root_hash) == (400, old.size, old.root_hash)
    assert proof.holds() and list(proof.hashes) == inclusion_proof(leaves, 400, old.size)
    con = prove_consistency(grown.store, grown.ledger_id, old, new)
    assert con.holds() and list(con.hashes) == consistency_proof(leaves, old.size, new.size)
    now = prove_consistency(grown.store, grown.ledger_id, old)
    assert now == con


def test_an_edited_stored_hash_is_a_finding_and_never_a_proof(
    grown: Ledger, store_url: str
) -> None:
    cp = parse_checkpoint(grown.checkpoint())  # builds the stored tree (two 256-leaf tiles)
    prove_inclusion(grown.store, grown.ledger_id, 2, cp)
    assert verify_store(grown.store, checkpoint_text=grown.checkpoint()).ok
    run_sql(store_url, "UPDATE kei_merkle_nodes SET hash = ? WHERE idx = 0", (bytes(32),))
    report = verify_store(grown.store)
    tile_end = [e.position for e in grown.read()][255]
    assert [(f.kind, f.position) for f in report.findings] == [(FindingKind.STORED_TREE, tile_end)]
    position = [e.position for e in grown.read()][600]  # its path uses the edited tile
    with pytest.raises(VerificationError, match="no longer have the checkpoint's root"):
        prove_inclusion(grown.store, grown.ledger_id, position, cp)
    with pytest.raises(KeiError):
        grown.checkpoint()  # refuses to sign while the stored tree disagrees
    run_sql(store_url, "DELETE FROM kei_merkle_nodes")  # the documented repair
    assert prove_inclusion(grown.store, grown.ledger_id, position, cp).holds()
    assert verify_store(grown.store, checkpoint_text=grown.checkpoint()).ok


def test_a_moved_tile_boundary_is_an_error_not_a_proof(grown: Ledger, store_url: str) -> None:
    cp = parse_checkpoint(grown.checkpoint())
    prove_inclusion(grown.store, grown.ledger_id, 2, cp)
    run_sql(store_url, "UPDATE kei_merkle_nodes SET last_position = last_position + 1")
    position = [e.position for e in grown.read()][300]
    with pytest.raises(KeiError):
        prove_inclusion(grown.store, grown.ledger_id, position, cp)
    assert FindingKind.STORED_TREE in {f.kind for f in verify_store(grown.store).findings}


def test_a_rewritten_history_is_forked_against_a_tree_checkpoint(
    grown: Ledger, store_url: str
) -> None:
    text = grown.checkpoint()
    positions = [e.position for e in grown.read()]
    run_sql(
        store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (bytes(32), positions[5])
    )
    kinds = {f.kind for f in verify_store(grown.store, checkpoint_text=text).findings}
    assert FindingKind.FORKED in kinds


# -- the CLI -------------------------------------------------------------------------


@pytest.fixture
def cli(store_url: str, tmp_path: Path) -> Callable[..., object]:
    run = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    return run


def grow(store_url: str, tmp_path: Path, n: int) -> None:
    key = load_key(tmp_path / "home" / "keys" / "default.key")
    with Ledger.open(store_url, key=key) as ledger:
        append(ledger, n)


def vkey_of(run: Callable[..., object]) -> str:
    rows = [json.loads(line) for line in run("keys", "list", "--json").stdout.splitlines()]  # type: ignore[attr-defined]
    return str(rows[0]["vkey"])


def test_prove_and_verify_proof_round_trip(
    cli: Callable[..., object], store_url: str, tmp_path: Path
) -> None:
    run = cli
    grow(store_url, tmp_path, 300)
    old, new = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    run("checkpoint", "-o", str(old))
    grow(store_url, tmp_path, 40)
    run("checkpoint", "-o", str(new))
    vkey = vkey_of(run)
    inc = run("prove", "inclusion", "123", "--checkpoint", str(old), "--json").stdout  # type: ignore[attr-defined]
    doc = json.loads(inc)
    assert (doc["leaf_index"], doc["tree_size"]) == (122, 301)
    assert base64.b64decode(doc["root_hash"]) == parse_checkpoint(old.read_text()).root_hash
    (tmp_path / "inc.json").write_text(inc)
    con = run("prove", "consistency", "--from", str(old), "--to", str(new), "--json").stdout  # type: ignore[attr-defined]
    (tmp_path / "con.json").write_text(con)
    text = run("prove", "inclusion", "123").stdout  # type: ignore[attr-defined]
    assert "leaf_index 122\ntree_size 341\n" in text

    offline = in_process(cli_env(tmp_path / "elsewhere", f"sqlite:///{tmp_path / 'none.db'}"))
    ok = offline(
        "verify-proof", str(tmp_path / "inc.json"), "--checkpoint", str(old), "--vkey", vkey
    )
    assert "OK" in ok.stderr  # type: ignore[attr-defined]
    offline(
        "verify-proof", str(tmp_path / "con.json"), "--checkpoint", str(new), "--from", str(old),
        "--vkey", vkey,
    )  # fmt: skip
    (tmp_path / "vkey").write_text(vkey + "\n")
    offline(
        "verify-proof", "-", "--checkpoint", str(old), "--vkey", str(tmp_path / "vkey"), stdin=inc
    )

    # the proof does not hold: another checkpoint, a changed hash, a stranger's key
    bad = offline(
        "verify-proof", str(tmp_path / "inc.json"), "--checkpoint", str(new), "--vkey", vkey,
        code=Exit.FINDINGS,
    )  # fmt: skip
    assert bad.stderr.startswith("kei: error: the proof does not hold")  # type: ignore[attr-defined]
    answers = [
        json.loads(offline(*args, "--vkey", vkey, "--json", code=code).stdout)  # type: ignore[attr-defined]
        for args, code in (
            (("verify-proof", str(tmp_path / "inc.json"), "--checkpoint", str(old)), Exit.OK),
            (("verify-proof", str(tmp_path / "inc.json"), "--checkpoint", str(new)), Exit.FINDINGS),
            (("verify-proof", str(tmp_path / "con.json"), "--checkpoint", str(new), "--from",
              str(old)), Exit.OK),
        )
    ]  # fmt: skip
    assert [(a["ok"], a["proof"], a["tree_size"]) for a in answers] == [
        (True, "inclusion", 301), (False, "inclusion", 301), (True, "consistency", 341)
    ]  # fmt: skip
    assert (answers[0]["position"], answers[0]["leaf_index"], answers[0]["problem"]) == (
        123,
        122,
        None,
    )
    assert answers[1]["problem"] and answers[2]["old_size"] == 301
    doc["hashes"][0] = base64.b64encode(bytes(32)).decode()
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    offline(
        "verify-proof", str(tmp_path / "bad.json"), "--checkpoint", str(old), "--vkey", vkey,
        code=Exit.FINDINGS,
    )  # fmt: skip
    stranger = run_other_vkey(vkey.split("+")[0])
    offline(
        "verify-proof", str(tmp_path / "inc.json"), "--checkpoint", str(old), "--vkey", stranger,
        code=Exit.FINDINGS,
    )  # fmt: skip
    offline(
        "verify-proof", str(tmp_path / "con.json"), "--checkpoint", str(new), "--vkey", vkey,
        code=Exit.USAGE,
    )  # fmt: skip


def run_other_vkey(name: str) -> str:
    from kei.domain.log.checkpoint import vkey
    from kei.domain.log.keys import SigningKey

    return vkey(name, SigningKey.generate().public_key)


def test_prove_bad_input_is_one_line(
    cli: Callable[..., object], store_url: str, tmp_path: Path
) -> None:
    run = cli
    grow(store_url, tmp_path, 20)
    small, big = tmp_path / "small.ckpt", tmp_path / "big.ckpt"
    run("checkpoint", "-o", str(small))
    grow(store_url, tmp_path, 5)
    run("checkpoint", "-o", str(big))
    other = in_process(cli_env(tmp_path / "other", f"sqlite:///{tmp_path / 'other.db'}"))
    other("init")
    foreign = tmp_path / "foreign.ckpt"
    other("checkpoint", "-o", str(foreign))
    key = load_key(tmp_path / "home" / "keys" / "default.key")
    cp = parse_checkpoint(small.read_text())
    legacy = tmp_path / "legacy.ckpt"
    legacy.write_text(sign_checkpoint(cp.origin, cp.size, bytes(32), key))
    cases = [
        (("prove", "inclusion", "9999"), "no event at position 9999"),
        (("prove", "inclusion", "25", "--checkpoint", str(small)), "is not in a tree of 21"),
        (("prove", "inclusion", "2", "--checkpoint", str(foreign)), "is for ledger"),
        (("prove", "consistency", "--from", str(big), "--to", str(small)), "more than"),
        (("prove", "consistency", "--from", str(foreign)), "is for ledger"),
        (("prove", "consistency", "--from", str(legacy)), "predates Merkle roots"),
        (("prove", "inclusion", "2", "--checkpoint", str(tmp_path / "nope")), "cannot read"),
    ]
    for args, message in cases:
        result = run(*args, code=Exit.USAGE)
        lines = result.stderr.splitlines()  # type: ignore[attr-defined]
        assert lines[0].startswith("kei: error: ") and message in lines[0], (args, lines)
        assert len(lines) <= 2 and "Traceback" not in result.output  # type: ignore[attr-defined]
    (tmp_path / "junk.json").write_text("{}")
    vkey = vkey_of(run)
    junk = run(
        "verify-proof", str(tmp_path / "junk.json"), "--checkpoint", str(small), "--vkey", vkey,
        code=Exit.USAGE,
    )  # fmt: skip
    assert "malformed" in junk.stderr  # type: ignore[attr-defined]
    run("verify-proof", "x", "--checkpoint", str(small), "--vkey", "a+b+c", code=Exit.USAGE)


def test_keys_list_and_export_show_the_vkey_that_signs_checkpoints(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    run = cli
    run("keys", "new", "second")
    rows = [json.loads(line) for line in run("keys", "list", "--json").stdout.splitlines()]  # type: ignore[attr-defined]
    for row in rows:
        name, public_key = parse_vkey(str(row["vkey"]))
        assert public_key.hex() == row["public_key"]
        exported = run("keys", "export", str(row["key_id"]), "--vkey").stdout.strip()  # type: ignore[attr-defined]
        assert exported == row["vkey"]
    text = run("checkpoint").stdout  # type: ignore[attr-defined]
    cp = parse_checkpoint(text)
    name, public_key = parse_vkey(str(rows[0]["vkey"]))
    assert name == cp.origin and cp.signatures[0][1] == note_key_id(name, public_key)
    assert str(rows[0]["vkey"]).split("+")[1] == cp.signatures[0][1].hex()
    missing = run("keys", "export", "0123456789abcdef", "--vkey", code=Exit.USAGE)
    assert "no key" in missing.stderr  # type: ignore[attr-defined]
    run("keys", "export", str(rows[0]["key_id"]), code=Exit.USAGE)


def test_the_tree_pass_beside_the_worker_processes_finds_the_same(
    grown: Ledger, store_url: str
) -> None:
    from kei.app.ledger.verification import VerifyLimits

    text = grown.checkpoint()
    prove_inclusion(grown.store, grown.ledger_id, 2, parse_checkpoint(text))
    limits = VerifyLimits(page=97, range_size=250, parallel_min=0)
    url = store_url
    one = verify_store(grown.store, jobs=1, checkpoint_text=text, limits=limits, url=url)
    two = verify_store(grown.store, jobs=2, checkpoint_text=text, limits=limits, url=url)
    assert one.ok and two.ok and (one.tree_size, one.tree_root) == (two.tree_size, two.tree_root)
    run_sql(store_url, "UPDATE kei_merkle_nodes SET hash = ? WHERE idx = 1", (bytes(32),))
    positions = [e.position for e in grown.read()]
    run_sql(
        store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?", (bytes(32), positions[9])
    )
    one = verify_store(grown.store, jobs=1, checkpoint_text=text, limits=limits, url=url)
    two = verify_store(grown.store, jobs=2, checkpoint_text=text, limits=limits, url=url)
    assert one.to_dict() == two.to_dict()
    kinds = {f.kind for f in two.findings}
    assert {FindingKind.STORED_TREE, FindingKind.FORKED} <= kinds
