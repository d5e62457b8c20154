"""The demo's integrity steps: a bundle exported and replayed, the chain verified, an
inclusion proof checked from files alone, then one flipped bit caught."""

from __future__ import annotations

import sqlite3

from kei.adapters.cli.demo.run import DemoRun, say_report
from kei.domain.log.envelope import HEADER_LEN


def step_bundle(run: DemoRun) -> None:
    """``kei hibernate export`` then ``kei replay --from`` into a second, empty store:
    the same events, and every read model rebuilt there to the exporter's digest."""
    from kei.app.bundle.export import export_bundle
    from kei.app.bundle.replay import replay_bundle

    bundle = run.folder / "brain.tar.zst"
    exported = export_bundle(run.open(), bundle, machine="demo")
    m = exported.manifest
    run.say(f"[bundle] kei hibernate export: {m.events} events, positions "
            f"{m.first_position}..{m.last_position}, {exported.bytes:,} bytes, signed")  # fmt: skip
    copy = run.folder / "restored.db"
    report = replay_bundle(bundle, f"sqlite:///{copy}")
    run.say(f"[replay] kei replay --from {bundle.name} --db {copy.name}: {report.mode}, "
            f"{report.appended} events, {report.keys} keys, every signature checked")  # fmt: skip
    for d in report.digests:
        run.say(f"  {d.name:<13} {d.status:<8} {(d.found or '-')[:23]}…")
    if not report.ok:
        raise RuntimeError("the demo's replay did not match its bundle: this is a bug in kei")


def step_verify(run: DemoRun) -> None:
    from kei.app.ledger.verification import verify_store

    say_report(run, "kei verify-chain", verify_store(run.open().store))


def step_prove(run: DemoRun) -> None:
    """``kei checkpoint``, ``kei prove inclusion`` and ``kei keys export --vkey`` write three
    small files; ``kei verify-proof`` then checks the merge is in the signed log from those
    files alone, without the database."""
    import json

    from kei.app.ledger.proving import prove_inclusion
    from kei.domain.log.checkpoint import parse_checkpoint, parse_vkey, vkey
    from kei.domain.log.proofs import check_proof, parse_proof

    ledger = run.open()
    assert ledger.key is not None
    merged = next(e for e in ledger.read() if e.type == "agent.merged")
    head = ledger.checkpoint()
    inclusion = prove_inclusion(ledger.store, ledger.ledger_id, merged.position)
    files = {
        "head.ckpt": head,
        "merge.proof.json": json.dumps(inclusion.to_dict()),
        "vkey": vkey(ledger.ledger_id, ledger.key.public_key),
    }
    for name, text in files.items():
        (run.folder / name).write_text(text, encoding="utf-8")
    run.say(
        f"[prove] kei prove inclusion {merged.position} ({merged.type}): leaf "
        f"{inclusion.leaf_index} of {inclusion.tree_size}, {len(inclusion.hashes)} hashes in the "
        "audit path"
    )
    # From here on, only the three files: no database, no KEI_HOME.
    cp = parse_checkpoint((run.folder / "head.ckpt").read_text(encoding="utf-8"))
    vkeys = [parse_vkey((run.folder / "vkey").read_text(encoding="utf-8"))]
    proof = parse_proof((run.folder / "merge.proof.json").read_text(encoding="utf-8"))
    problem = check_proof(proof, cp, vkeys)
    if problem:
        raise RuntimeError(f"the demo's inclusion proof does not hold ({problem}): a kei bug")
    run.say(
        "[verify-proof] kei verify-proof merge.proof.json --checkpoint head.ckpt --vkey vkey: "
        f"OK, position {merged.position} is in the signed log of {cp.size}, checked without "
        "the database"
    )


def step_tamper(run: DemoRun) -> None:
    """Copy the database (backup API, so WAL content comes along) and flip one stored byte."""
    ledger = run.open()
    source = run.folder / "ledger.db"
    run.tampered = run.folder / "tampered.db"
    victim = next(
        e for e in ledger.read() if e.type == "cost.recorded" and e.stream == "agent/research"
    )
    src, dst = sqlite3.connect(source), sqlite3.connect(run.tampered)
    try:
        src.backup(dst)
        sql = "SELECT state FROM kei_events WHERE rowid = ?"
        (state,) = dst.execute(sql, (victim.position,)).fetchone()
        flipped = bytearray(state)
        at = HEADER_LEN + (len(flipped) - HEADER_LEN) // 2
        flipped[at] ^= 0x01
        sql = "UPDATE kei_events SET state = ? WHERE rowid = ?"
        dst.execute(sql, (bytes(flipped), victim.position))
        dst.commit()
    finally:
        src.close()
        dst.close()
    run.say(
        f"[tamper] flipped one bit of byte {at} of position {victim.position} "
        f"({victim.type}) in a copy: {run.tampered.name}"
    )


def step_catch(run: DemoRun) -> None:
    from kei.adapters.store import open_store
    from kei.app.ledger.verification import verify_store

    assert run.tampered is not None, "step_tamper runs first"
    store = open_store(f"sqlite:///{run.tampered}")
    try:
        report = verify_store(store)
    finally:
        store.close()
    say_report(run, "kei verify-chain on the copy", report)
    if report.ok:
        raise RuntimeError("the demo's tampering went undetected: this is a bug in kei")
    run.say("tampering caught; the original ledger still verifies clean")
