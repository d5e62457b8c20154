"""Witnesses: ``kei witness cosign`` cosigns one history only, ``verify-chain --witness``
counts cosignatures, and automatic checkpoints appear as the log grows.

The fork is real: a SQLite ledger copied byte for byte, then different events appended
to each copy. The cosignature line is checked by a verifier written here from the C2SP
tlog-cosignature spec (key id with type 0x04, 8-byte big-endian time, Ed25519 over
``cosignature/v1\\ntime <t>\\n`` + body), not by kei's own code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_helpers import cli_env, in_process
from kei.adapters.cli.exits import Exit
from kei.adapters.files.keyfile import load_key
from kei.adapters.files.witness_state import Seen, locked
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain import events
from kei.domain.log.cosignature import (
    cosignature_line,
    cosigned_by,
    parse_witness_vkey,
    witness_vkey,
)
from kei.domain.log.keys import SigningKey
from kei.errors import InputError

Run = Callable[..., Any]


def grow(url: str, home: Path, n: int, tag: str) -> None:
    key = load_key(home / "keys" / "default.key")
    with Ledger.open(url, key=key) as ledger:
        ledger.append(
            [NewEvent(f"s-{tag}", events.AgentMerged(agent_id=f"{tag}-{i}")) for i in range(n)]
        )


def spec_verify(note: str, name: str, public_key: bytes) -> bool:
    """An independent C2SP tlog-cosignature/v1 (Ed25519) check of ``note``."""
    body, _, sigs = note.partition("\n\n")
    body += "\n"
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + public_key).digest()[:4]
    for line in sigs.splitlines():
        dash, line_name, blob64 = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(blob64)
        if line_name != name or blob[:4] != key_id or len(blob) != 76:
            continue
        t = int.from_bytes(blob[4:12], "big")
        message = b"cosignature/v1\n" + b"time " + str(t).encode() + b"\n" + body.encode()
        try:
            nacl.signing.VerifyKey(public_key).verify(message, blob[12:])
        except nacl.exceptions.BadSignatureError:
            return False
        return True
    return False


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def run(home: Path, store_url: str) -> Run:
    r = in_process(cli_env(home, store_url))
    r("init")
    return r


def log_vkey(run: Run) -> str:
    rows = [json.loads(line) for line in run("keys", "list", "--json").stdout.splitlines()]
    return str(rows[0]["vkey"])


def make_witness(run: Run, tmp_path: Path, name: str) -> tuple[Path, str]:
    key = tmp_path / f"{name.replace('/', '_')}.key"
    printed = run("witness", "init", "--name", name, "--key", str(key)).stdout.strip()
    assert run("witness", "vkey", "--key", str(key)).stdout.strip() == printed
    return key, printed


def cosign(
    run: Run, ckpt: Path, vkey: str, key: Path, state: Path, *extra: str, code: int = 0
) -> Any:
    return run(
        "witness",
        "cosign",
        str(ckpt),
        "--vkey",
        vkey,
        "--state",
        str(state),
        "--key",
        str(key),
        *extra,
        code=code,
    )


def test_a_genuine_extension_is_cosigned_and_verifies_by_the_spec(
    run: Run, store_url: str, home: Path, tmp_path: Path
) -> None:
    grow(store_url, home, 20, "a")
    old, new = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    run("checkpoint", "-o", str(old))
    wkey, wvkey = make_witness(run, tmp_path, "witness.example/w1")
    state = tmp_path / "state"
    vkey = log_vkey(run)
    first = cosign(run, old, vkey, wkey, state).stdout
    assert first.startswith(old.read_text()) and first.count("\n\u2014 ") == 2
    grow(store_url, home, 7, "b")
    run("checkpoint", "-o", str(new))
    # without a proof the witness cannot know it extends what it saw
    cosign(run, new, vkey, wkey, state, code=Exit.USAGE)
    proof = tmp_path / "proof.json"
    proof.write_text(
        run("prove", "consistency", "--from", str(old), "--to", str(new), "--json").stdout
    )
    out = tmp_path / "cosigned.ckpt"
    cosign(run, new, vkey, wkey, state, "--proof", str(proof), "--out", str(out))
    name, public_key = parse_witness_vkey(wvkey)
    assert spec_verify(out.read_text(), name, public_key)
    # the same checkpoint again is fine; the older one now is not (rollback)
    cosign(run, new, vkey, wkey, state)
    assert "fewer" in cosign(run, old, vkey, wkey, state, code=Exit.FINDINGS).stderr
    files = [p for p in state.iterdir() if p.suffix == ".json"]
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def _copy_sqlite(src: str, dst: Path) -> str:
    source = sqlite3.connect(src[len("sqlite:///") :])
    target = sqlite3.connect(dst)
    source.backup(target)
    source.close()
    target.close()
    return f"sqlite:///{dst}"


def test_a_forked_log_is_refused_by_a_witness_that_saw_the_other_branch(
    sqlite_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    main = in_process(cli_env(home, sqlite_url))
    main("init")
    grow(sqlite_url, home, 30, "base")
    base = tmp_path / "base.ckpt"
    main("checkpoint", "-o", str(base))
    fork_url = _copy_sqlite(sqlite_url, tmp_path / "fork.db")
    fork = in_process(cli_env(home, fork_url))
    grow(sqlite_url, home, 10, "honest")
    grow(fork_url, home, 10, "evil")
    honest, evil = tmp_path / "honest.ckpt", tmp_path / "evil.ckpt"
    main("checkpoint", "-o", str(honest))
    fork("checkpoint", "-o", str(evil))
    assert honest.read_text().split("\n")[1] == evil.read_text().split("\n")[1]  # same size
    vkey = log_vkey(main)
    assert log_vkey(fork) == vkey  # same ledger, same key: only the witness tells them apart
    wkey, _ = make_witness(main, tmp_path, "w1")
    state = tmp_path / "state"
    cosign(main, base, vkey, wkey, state)
    p_honest, p_evil = tmp_path / "ph.json", tmp_path / "pe.json"
    p_honest.write_text(
        main("prove", "consistency", "--from", str(base), "--to", str(honest), "--json").stdout
    )
    p_evil.write_text(
        fork("prove", "consistency", "--from", str(base), "--to", str(evil), "--json").stdout
    )
    cosign(main, honest, vkey, wkey, state, "--proof", str(p_honest))
    # the same size with another root: refused
    assert (
        "fork"
        in cosign(main, evil, vkey, wkey, state, "--proof", str(p_evil), code=Exit.FINDINGS).stderr
    )
    # the fork grows past it, with a genuine proof from the shared prefix: still refused
    grow(fork_url, home, 15, "evil2")
    longer = tmp_path / "longer.ckpt"
    fork("checkpoint", "-o", str(longer))
    p_long = tmp_path / "pl.json"
    p_long.write_text(
        fork("prove", "consistency", "--from", str(base), "--to", str(longer), "--json").stdout
    )
    cosign(main, longer, vkey, wkey, state, "--proof", str(p_long), code=Exit.FINDINGS)
    # a proof from the honest branch's checkpoint cannot be made on the fork
    fork("prove", "consistency", "--from", str(honest), "--to", str(longer), "--json", code=None)
    # and the honest branch still extends
    grow(sqlite_url, home, 3, "honest2")
    later = tmp_path / "later.ckpt"
    main("checkpoint", "-o", str(later))
    p_later = tmp_path / "pla.json"
    p_later.write_text(
        main("prove", "consistency", "--from", str(honest), "--to", str(later), "--json").stdout
    )
    cosign(main, later, vkey, wkey, state, "--proof", str(p_later))


def test_a_bad_log_signature_or_wrong_vkey_is_refused(run: Run, tmp_path: Path) -> None:
    ckpt = tmp_path / "c.ckpt"
    run("checkpoint", "-o", str(ckpt))
    wkey, _ = make_witness(run, tmp_path, "w1")
    state = tmp_path / "state"
    other = SigningKey.generate()
    from kei.domain.log.checkpoint import parse_checkpoint, vkey

    origin = parse_checkpoint(ckpt.read_text()).origin
    r = cosign(run, ckpt, vkey(origin, other.public_key), wkey, state, code=Exit.FINDINGS)
    assert "signature" in r.stderr
    cosign(run, ckpt, vkey("elsewhere", other.public_key), wkey, state, code=Exit.USAGE)
    assert not state.exists() or not any(p.suffix == ".json" for p in state.iterdir())


def test_verify_chain_counts_witness_cosignatures(run: Run, tmp_path: Path) -> None:
    ckpt = tmp_path / "c.ckpt"
    run("checkpoint", "-o", str(ckpt))
    vkey = log_vkey(run)
    k1, v1 = make_witness(run, tmp_path, "w1")
    k2, v2 = make_witness(run, tmp_path, "w2")
    one = tmp_path / "one.ckpt"
    cosign(run, ckpt, vkey, k1, tmp_path / "s1", "--out", str(one))
    both = tmp_path / "both.ckpt"
    cosign(run, one, vkey, k2, tmp_path / "s2", "--out", str(both))
    r = run(
        "verify-chain",
        "--checkpoint",
        str(one),
        "--witness",
        v1,
        "--witness",
        v2,
        code=Exit.FINDINGS,
    )
    assert "witness-quorum" in r.stdout and "w2" in r.stdout
    run("verify-chain", "--checkpoint", str(one), "--witness", v1, "--witness", v2, "--quorum", "1")
    run("verify-chain", "--checkpoint", str(both), "--witness", v1, "--witness", v2)
    run("verify-chain", "--checkpoint", str(ckpt), "--witness", v1, code=Exit.FINDINGS)
    # a cosignature on another body does not count: change the root line
    text = both.read_text().split("\n")
    forged = tmp_path / "forged.ckpt"
    forged.write_text("\n".join([text[0], "999", *text[2:]]))
    run("verify-chain", "--checkpoint", str(forged), "--witness", v1, code=Exit.FINDINGS)
    run("verify-chain", "--witness", v1, code=Exit.USAGE)
    run(
        "verify-chain", "--checkpoint", str(both), "--witness", v1, "--quorum", "2", code=Exit.USAGE
    )
    run("verify-chain", "--checkpoint", str(both), "--witness", "nope", code=Exit.USAGE)


def test_two_cosigns_at_once_never_both_pass_on_forked_roots(tmp_path: Path) -> None:
    """The state lock: of two forked checkpoints at one size, one passes, one is refused."""
    state = tmp_path / "state"
    roots = [bytes([1]) * 32, bytes([2]) * 32]
    passed: list[bytes] = []

    def attempt(root: bytes) -> None:
        with locked(state) as s:
            seen = s.get("log")
            if seen is None or seen.root_hash == root:
                s.put(Seen("log", 5, root))
                passed.append(root)

    threads = [threading.Thread(target=attempt, args=(r,)) for r in roots * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(passed)) == 1


@pytest.mark.parametrize("planted", ["fifo", "folder"])
def test_a_fifo_or_folder_at_the_witness_state_path_is_an_error_not_a_hang(
    tmp_path: Path, planted: str
) -> None:
    """Someone who can write the state folder cannot stall a witness or crash it."""
    state = tmp_path / "state"
    with locked(state) as s:
        s.put(Seen("log", 5, bytes(32)))
    (target,) = [p for p in state.iterdir() if p.suffix == ".json"]
    target.unlink()
    if planted == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    with (
        locked(state) as s,
        pytest.raises(InputError, match="witness state"),
    ):
        s.get("log")


@given(
    t=st.integers(0, 2**63 - 1),
    size=st.integers(0, 2**40),
    name=st.from_regex(r"[a-z./0-9]{1,30}", fullmatch=True),
    flip=st.integers(0, 10_000),
)
def test_cosignature_lines_verify_by_the_spec_and_break_on_any_change(
    t: int, size: int, name: str, flip: int
) -> None:
    key = SigningKey.generate(name=name)
    body = f"example.org/log\n{size}\n{base64.b64encode(bytes(32)).decode()}\n"
    note = body + "\n" + cosignature_line(body, name, key, t)
    assert spec_verify(note, name, key.public_key)
    assert cosigned_by(note, body, name, key.public_key) == t
    assert parse_witness_vkey(witness_vkey(name, key.public_key)) == (name, key.public_key)
    other = body.replace(f"\n{size}\n", f"\n{size + 1}\n")
    assert cosigned_by(note, other, name, key.public_key) is None
    head, blob64 = note.rstrip("\n").rsplit(" ", 1)
    blob = bytearray(base64.b64decode(blob64))
    blob[flip % len(blob)] ^= 1 << (flip % 8)
    broken = f"{head} {base64.b64encode(bytes(blob)).decode()}\n"
    assert not spec_verify(broken, name, key.public_key)
    assert cosigned_by(broken, body, name, key.public_key) is None


def test_automatic_checkpoints_appear_and_verify(store_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = tmp_path / "ckpts"
    env = cli_env(home, store_url, KEI_CHECKPOINT_EVERY="2", KEI_CHECKPOINT_DIR=str(folder))
    run = in_process(env)
    run("init")
    run("agent", "fork", "a1", "agent/a1")
    run("agent", "fork", "a2", "agent/a2")
    files = sorted(folder.glob("*.ckpt"))
    assert files, "no automatic checkpoint was written"
    for f in files:
        size = int(f.read_text().split("\n")[1])
        assert f.name == f"{size:020d}.ckpt"
        run("verify-chain", "--checkpoint", str(f))
    # a folder that cannot be written: the write still succeeds, with one warning line
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    bad = in_process({**env, "KEI_CHECKPOINT_DIR": str(blocker), "KEI_CHECKPOINT_EVERY": "1"})
    r = bad("agent", "fork", "a3", "agent/a3")
    assert "no automatic checkpoint written" in r.stderr
    assert blocker.read_text() == "x"


def test_two_witness_processes_at_once_cosign_only_one_branch(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Two real ``kei witness cosign`` processes racing on forked checkpoints of one
    size, from a fresh state: exactly one is cosigned, the other refused."""
    import subprocess
    import sys

    home = tmp_path / "home"
    env = cli_env(home, sqlite_url)
    main = in_process(env)
    main("init")
    grow(sqlite_url, home, 5, "base")
    fork_url = _copy_sqlite(sqlite_url, tmp_path / "fork.db")
    grow(sqlite_url, home, 4, "honest")
    grow(fork_url, home, 4, "evil")
    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    main("checkpoint", "-o", str(a))
    in_process(cli_env(home, fork_url))("checkpoint", "-o", str(b))
    vkey = log_vkey(main)
    wkey, _ = make_witness(main, tmp_path, "w1")
    state = tmp_path / "state"
    args = ["--vkey", vkey, "--state", str(state), "--key", str(wkey)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kei", "witness", "cosign", str(c), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for c in (a, b)
    ]
    codes = sorted(p.wait(timeout=120) for p in procs)
    for p in procs:
        assert p.stderr is not None
        p.stderr.close()
    assert codes == [Exit.OK, Exit.FINDINGS]
