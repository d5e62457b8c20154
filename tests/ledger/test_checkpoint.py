"""Checkpoints: the signed C2SP note round-trips, and ``verify-chain --checkpoint``
catches every way a log can stop holding what a checkpoint covered.

Attacks, each on both stores where they are SQL-level: a tampered note; another
ledger's note; cutting off the newest events (truncated); cutting them off and
appending others (rollback: forked); rewriting an old event, re-signing it with the
ledger's own key and rebuilding the chain (forked: only a checkpoint kept elsewhere
can reveal it). Malformed files are usage errors (exit 2).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from test_verify_findings import (
    chain_row,
    event_row,
    fill,
    pos_col,
    relink,
    resign_heads,
    set_state,
)

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.cli.exits import Exit
from kei.adapters.files.keyfile import load_key
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.checkpoint import (
    note_key_id,
    parse_checkpoint,
    sign_checkpoint,
    sign_tree_checkpoint,
    signed_by,
)
from kei.domain.log.envelope import open_state, seal
from kei.domain.log.findings import FindingKind
from kei.domain.log.identity import genesis_line
from kei.domain.log.keys import SigningKey
from kei.domain.log.merkle import LeafList, leaf_hash, root
from kei.errors import CheckpointFormatError
from kei.limits import LIMITS

K = FindingKind


def cp_findings(
    ledger: Ledger, text: str, *, quick: bool = False
) -> list[tuple[K, int | None, str]]:
    report = verify_store(ledger.store, checkpoint_text=text, quick=quick)
    return [(f.kind, f.position, f.detail) for f in report.findings]


def test_a_checkpoint_round_trips(ledger: Ledger, key: SigningKey) -> None:
    positions = fill(ledger)
    text = ledger.checkpoint()
    cp = parse_checkpoint(text)
    assert (cp.origin, cp.size) == (ledger.ledger_id, len(positions))
    hashes = [chain_row(ledger.store.url, p)[2] for p in positions]
    assert cp.is_tree
    assert cp.root_hash == root(LeafList([leaf_hash(h) for h in hashes]), len(hashes))
    assert signed_by(cp, [key.public_key]) == key.public_key
    assert cp.extensions == ("kei-root rfc9162", genesis_line(key.public_key))
    assert text == sign_tree_checkpoint(
        cp.origin, cp.size, cp.root_hash, key, (genesis_line(key.public_key),)
    )  # ed25519 is deterministic
    report = verify_store(ledger.store, checkpoint_text=text)
    assert report.ok and report.checkpoint == {
        "origin": ledger.ledger_id,
        "size": len(positions),
        "format": "tree",
        "root_hash": "sha256:" + cp.root_hash.hex(),
    }


def chain_head_checkpoint(ledger: Ledger, key: SigningKey) -> str:
    """A checkpoint in the format kei wrote before Merkle roots (root line = chain head)."""
    size = ledger.store.chain_size()
    entry = ledger.store.chain_at(size - 1)
    assert entry is not None
    return sign_checkpoint(ledger.ledger_id, size, entry.hash, key)


def test_a_chain_head_checkpoint_still_verifies(ledger: Ledger, key: SigningKey) -> None:
    positions = fill(ledger)
    text = chain_head_checkpoint(ledger, key)
    cp = parse_checkpoint(text)
    assert not cp.is_tree and cp.head_hash == chain_row(ledger.store.url, positions[-1])[2]
    report = verify_store(ledger.store, checkpoint_text=text)
    assert report.ok and report.checkpoint is not None
    assert report.checkpoint["format"] == "chain-head"
    fill(ledger, 3)
    assert cp_findings(ledger, text) == []


def test_a_log_that_grew_since_its_checkpoint_verifies(ledger: Ledger) -> None:
    fill(ledger, 3)
    text = ledger.checkpoint()
    fill(ledger, 5)
    assert cp_findings(ledger, text) == []


def test_a_note_signed_by_a_later_added_key_and_an_unknown_one_verifies(ledger: Ledger) -> None:
    """C2SP: unknown signature lines are ignored; one known valid signature suffices."""
    fill(ledger, 2)
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    cp = parse_checkpoint(ledger.checkpoint())
    stranger = SigningKey.generate()
    extra = cp.extensions[1:]  # the kei-genesis line
    foreign = sign_tree_checkpoint(cp.origin, cp.size, cp.root_hash, stranger, extra)
    ours = sign_tree_checkpoint(cp.origin, cp.size, cp.root_hash, second, extra)
    foreign, ours = foreign.split("\n\n")[1], ours.split("\n\n")[1]
    assert cp_findings(ledger, cp.body + "\n" + foreign + ours) == []


@pytest.mark.parametrize("where", ["signature", "size", "head", "format"])
def test_a_tampered_checkpoint_is_checkpoint_invalid(ledger: Ledger, where: str) -> None:
    fill(ledger, 3)
    origin, size, head, ext, genesis, blank, sig, end = ledger.checkpoint().split("\n")
    if where == "signature":
        name, blob = sig.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 0x01
        sig = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    elif where == "size":
        size = str(int(size) - 1)
    elif where == "format":
        ext = "kei-root chain-head"
    else:
        head = base64.b64encode(bytes(32)).decode()
    text = "\n".join((origin, size, head, ext, genesis, blank, sig, end))
    assert cp_findings(ledger, text) == [
        (K.BAD_CHECKPOINT, None, "checkpoint has no valid signature by a key of this ledger")
    ]


def test_another_ledgers_checkpoint_is_checkpoint_invalid(
    ledger: Ledger, make_ledger: Callable[[str], Ledger], tmp_path: Path
) -> None:
    fill(ledger, 2)
    other = make_ledger(f"sqlite:///{tmp_path / 'other.db'}")
    text = other.checkpoint()
    assert cp_findings(ledger, text, quick=True) == [
        (
            K.BAD_CHECKPOINT,
            None,
            f"checkpoint is for ledger {other.ledger_id}, not {ledger.ledger_id}",
        )
    ]


def test_a_checkpoint_signed_by_a_stranger_under_our_name_is_checkpoint_invalid(
    ledger: Ledger,
) -> None:
    fill(ledger, 2)
    cp = parse_checkpoint(ledger.checkpoint())
    forged = sign_tree_checkpoint(cp.origin, cp.size, cp.root_hash, SigningKey.generate())
    assert [k for k, _, _ in cp_findings(ledger, forged)] == [K.BAD_CHECKPOINT]
    assert note_key_id(cp.origin, b"\x00" * 32) != cp.signatures[0][1]


def cut_tail(url: str, positions: list[int]) -> None:
    """Delete the newest events, both rows each, and the signed heads of what is cut, as
    someone rolling the log back to the end of an earlier transaction would (heads
    catch a cut inside a transaction; only a checkpoint catches this one)."""
    col = pos_col(url)
    (seq,) = run_sql(url, "SELECT seq FROM kei_chain WHERE position = ?", (positions[0],))[0]
    run_sql(url, f"DELETE FROM kei_events WHERE {col} >= ?", (positions[0],))
    run_sql(url, "DELETE FROM kei_chain WHERE position >= ?", (positions[0],))
    run_sql(url, "DELETE FROM kei_heads WHERE seq >= ?", (seq,))


def test_a_truncated_log_is_truncated(ledger: Ledger, store_url: str) -> None:
    fill(ledger)
    positions = fill(ledger, 3)  # a transaction of its own, cut below
    text = ledger.checkpoint()
    cut_tail(store_url, positions[-3:])
    assert verify_store(ledger.store).ok  # the chain alone cannot tell
    assert cp_findings(ledger, text) == [
        (K.TRUNCATED, None, f"checkpoint covers {len(positions)} events but the log holds "
         f"{len(positions) - 3}")
    ]  # fmt: skip


def test_a_rolled_back_and_regrown_log_is_forked(ledger: Ledger, store_url: str) -> None:
    fill(ledger)
    positions = fill(ledger, 3)
    text = ledger.checkpoint()
    cut_tail(store_url, positions[-3:])
    ledger.append(
        [NewEvent(f"other-{i}", events.AgentMerged(agent_id=f"other-{i}")) for i in range(5)]
    )
    found = cp_findings(ledger, text)
    assert [(k, d) for k, _, d in found] == [(K.FORKED, forked_detail(len(positions)))]


def forked_detail(size: int) -> str:
    return (
        f"the tree root of the first {size} entries differs from the checkpoint's: "
        "history was rewritten"
    )


def test_history_rewritten_and_resigned_with_our_key_is_forked(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    positions = fill(ledger)
    text = ledger.checkpoint()
    old_format = chain_head_checkpoint(ledger, key)
    target = positions[3]
    stream, version, type_, state = event_row(store_url, target)
    env = open_state(state)
    forged = seal(
        stream=stream, version=version, type_=type_, schema_version=env.schema_version,
        timestamp_us=env.timestamp_us, signer=key,
        payload=events.encode_payload(events.AgentForked(agent_id="agent-0", branch="evil")),
    )  # fmt: skip
    set_state(store_url, target, forged)
    relink(store_url, target)
    resign_heads(store_url, key)
    assert verify_store(ledger.store).ok  # signatures, chain and heads are all valid again
    assert cp_findings(ledger, text) == [(K.FORKED, None, forked_detail(len(positions)))]
    assert cp_findings(ledger, text, quick=True) == cp_findings(ledger, text)
    assert cp_findings(ledger, old_format) == [
        (
            K.FORKED,
            positions[-1],
            f"entry {len(positions) - 1} differs from the checkpoint's head: history was rewritten",
        )
    ]


# -- malformed files and the CLI ---------------------------------------------------------

MALFORMED = [
    pytest.param(b"", "no blank line", id="empty"),
    pytest.param(b"origin\n3\nAAAA\n", "no blank line", id="no-signatures"),
    pytest.param(b"origin\nthree\nAAAA\n\n\xe2\x80\x94 o AAAA\n", "not a decimal", id="bad-size"),
    pytest.param(b"origin\n03\nAAAA\n\n\xe2\x80\x94 o AAAA\n", "not a decimal", id="leading-zero"),
    pytest.param(b"origin\n3\n!!!!\n\n\xe2\x80\x94 o AAAA\n", "not base64", id="bad-hash"),
    pytest.param(b"origin\n3\nAAAA\n\n\xe2\x80\x94 o AAAA\n", "expected 32", id="short-hash"),
    pytest.param(b"o\n3\n" + base64.b64encode(bytes(32)) + b"\n\n- o AAAA\n", "em dash", id="dash"),
    pytest.param(b"x" * (LIMITS.max_note_bytes + 1), "larger than", id="too-big"),
]


@pytest.mark.parametrize(("raw", "text"), MALFORMED)
def test_a_malformed_checkpoint_is_refused(raw: bytes, text: str) -> None:
    with pytest.raises(CheckpointFormatError, match=text):
        parse_checkpoint(raw.decode())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    proc = kei(["init"], cli_env(home))
    assert proc.returncode == 0, proc.stderr
    return home


@pytest.mark.parametrize(
    ("raw", "text"),
    [*MALFORMED[::3], pytest.param(b"\xff\xfe\n", "is not UTF-8 text", id="not-utf8")],
)
def test_cli_malformed_checkpoint_file_exits_2(home: Path, raw: bytes, text: str) -> None:
    bad = home / "bad.cp"
    bad.write_bytes(raw)
    proc = kei(["verify-chain", "--checkpoint", str(bad)], cli_env(home))
    assert proc.returncode == Exit.USAGE, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"kei: error: checkpoint {bad} ") and text in first
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_cli_checkpoint_round_trip_then_truncation(home: Path) -> None:
    url = f"sqlite:///{home / 'ledger.db'}"
    with Ledger.open(url, key=load_key(home / "keys/default.key")) as ledger:
        fill(ledger, 2)
        positions = fill(ledger, 2)
    out = home / "cp" / "ledger.cp"
    out.parent.mkdir()
    proc = kei(["checkpoint", "--out", str(out)], cli_env(home))
    assert proc.returncode == Exit.OK, proc.stderr
    assert proc.stderr == f"kei: wrote a checkpoint of 5 events to {out}\n"
    assert [p.name for p in out.parent.iterdir()] == ["ledger.cp"]  # no temporary left
    printed = kei(["checkpoint"], cli_env(home))
    assert printed.stdout == out.read_text() and printed.returncode == Exit.OK
    proc = kei(["verify-chain", "--checkpoint", str(out)], cli_env(home))
    assert proc.returncode == Exit.OK, proc.stderr
    assert "; matches checkpoint of 5" in proc.stderr
    cut_tail(url, positions[-2:])
    proc = kei(["verify-chain", "--quick", "--checkpoint", str(out)], cli_env(home))
    assert proc.returncode == Exit.FINDINGS
    assert proc.stdout == "log: truncated: checkpoint covers 5 events but the log holds 3\n"


def test_cli_checkpoint_errors(home: Path) -> None:
    proc = kei(["checkpoint", "--out", str(home / "no" / "such" / "dir" / "cp")], cli_env(home))
    assert proc.returncode == Exit.USAGE
    assert proc.stderr.startswith("kei: error: cannot write ") and "does not exist" in proc.stderr
    proc = kei(["--key", "nosuch", "checkpoint"], cli_env(home))
    assert proc.returncode == Exit.USAGE and "no key file at" in proc.stderr
    proc = kei(["checkpoint"], cli_env(home, str(home / "missing.db")))
    assert proc.returncode == Exit.STORE


def test_no_checkpoint_is_signed_over_a_tampered_log(ledger: Ledger, store_url: str) -> None:
    """A checkpoint vouches for what it covers: kei refuses to sign a log with findings."""
    from test_verify_findings import event_row, fill, flip, set_state

    from kei.errors import VerificationError

    positions = fill(ledger)
    state = event_row(store_url, positions[2])[3]
    set_state(store_url, positions[2], flip(state, len(state) - 1))
    with pytest.raises(VerificationError, match=f"first at position {positions[2]}"):
        ledger.checkpoint()
