"""Every finding kind of ``verify-chain``, produced on purpose by tampering with the
database behind kei's back, reported at the right position with the right kind.

Tampering is plain SQL on ``kei_events`` / ``kei_chain`` (SQLite position = rowid,
PostgreSQL position = notification_id), run on both stores. The CLI tests at the end
run the real ``kei`` in a child process and check the exit codes 0/1/2/3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.cli.exits import Exit
from kei.adapters.files.keyfile import load_key
from kei.adapters.store.base import PendingRecord
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.verification import VerifyLimits, verify_store
from kei.domain import events
from kei.domain.log.envelope import GENESIS_PREV, chain_hash, open_state, seal
from kei.domain.log.findings import FindingKind
from kei.domain.log.heads import HeadSigner, head_message, head_signer
from kei.domain.log.keys import SigningKey

K = FindingKind


def pos_col(url: str) -> str:
    return "rowid" if url.startswith("sqlite") else "notification_id"


def fill(ledger: Ledger, n: int = 9) -> list[int]:
    """Append ``n`` events over three streams; the positions of all events, genesis first."""
    ledger.append(
        [
            NewEvent(
                f"agent-{i % 3}", events.AgentForked(agent_id=f"agent-{i % 3}", branch=f"b{i}")
            )
            for i in range(n)
        ]
    )
    return [e.position for e in ledger.read()]


def found(ledger: Ledger, **kwargs: Any) -> set[tuple[FindingKind, int | None]]:
    return {(f.kind, f.position) for f in verify_store(ledger.store, **kwargs).findings}


def details(ledger: Ledger, kind: FindingKind) -> list[str]:
    return [f.detail for f in verify_store(ledger.store).findings if f.kind is kind]


def event_row(url: str, pos: int) -> tuple[Any, ...]:
    """(stream, version, type, state) of the event at ``pos``."""
    rows = run_sql(
        url,
        f"SELECT originator_id, originator_version, topic, state FROM kei_events "
        f"WHERE {pos_col(url)} = ?",
        (pos,),
    )
    stream, version, type_, state = rows[0]
    return stream, version, type_, bytes(state)


def chain_row(url: str, pos: int) -> tuple[int, bytes, bytes]:
    seq, prev, digest = run_sql(
        url, "SELECT seq, prev_hash, hash FROM kei_chain WHERE position = ?", (pos,)
    )[0]
    return seq, bytes(prev), bytes(digest)


def set_state(url: str, pos: int, state: bytes) -> None:
    run_sql(url, f"UPDATE kei_events SET state = ? WHERE {pos_col(url)} = ?", (state, pos))


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def relink(url: str, start: int) -> None:
    """Recompute every chain hash from ``start`` on, as a forger with database access would."""
    col = pos_col(url)
    before = run_sql(
        url,
        "SELECT hash FROM kei_chain WHERE position < ? ORDER BY position DESC LIMIT 1",
        (start,),
    )
    prev = bytes(before[0][0]) if before else GENESIS_PREV
    rows = run_sql(
        url,
        f"SELECT e.{col}, e.originator_id, e.originator_version, e.topic, e.state, c.seq "
        f"FROM kei_events e JOIN kei_chain c ON c.position = e.{col} "
        f"WHERE e.{col} >= ? ORDER BY e.{col}",
        (start,),
    )
    for pos, stream, version, type_, state, seq in rows:
        digest = chain_hash(prev, seq, pos, stream, version, type_, bytes(state))
        run_sql(
            url,
            "UPDATE kei_chain SET prev_hash = ?, hash = ? WHERE position = ?",
            (prev, digest, pos),
        )
        prev = digest


def heads_by(ledger: Ledger, signer: SigningKey) -> HeadSigner:
    """What a writer holding ``signer`` signs each transaction's head with."""
    return head_signer(ledger.ledger_id, signer.key_id, signer.sign)


def resign_heads(url: str, signer: SigningKey) -> None:
    """Re-sign every head over the chain as it now is: what a key holder who rewrote
    history does after relinking (a keyless forger cannot)."""
    genesis = run_sql(url, f"SELECT state FROM kei_events ORDER BY {pos_col(url)} LIMIT 1")
    ledger_id = msgspec.msgpack.decode(open_state(bytes(genesis[0][0])).payload)["ledger_id"]
    for position, first, last in run_sql(url, "SELECT position, first_seq, seq FROM kei_heads"):
        found = run_sql(url, "SELECT hash FROM kei_chain WHERE seq = ?", (last,))
        if found:
            message = head_message(ledger_id, first, last, position, bytes(found[0][0]))
            run_sql(
                url,
                "UPDATE kei_heads SET key_id = ?, signature = ? WHERE position = ?",
                (signer.key_id, signer.sign(message), position),
            )


def append_signed_by(ledger: Ledger, signer: SigningKey, stream: str = "intruder") -> int:
    """Append one event sealed by ``signer``, straight through the store (no key checks);
    its transaction's head is signed by ``signer`` too, as any writer holding it would."""
    version = ledger.store.stream_version(stream) + 1
    state = seal(
        stream=stream, version=version, type_="agent.merged", schema_version=1,
        timestamp_us=1_764_000_000_000_000,
        payload=events.encode_payload(events.AgentMerged(agent_id=stream)), signer=signer,
    )  # fmt: skip
    entries = ledger.store.append(
        [PendingRecord(stream, version, "agent.merged", state)],
        sign_head=heads_by(ledger, signer),
    )
    return entries[0].position


# -- a clean log -----------------------------------------------------------------


def test_a_clean_log_has_no_findings(ledger: Ledger) -> None:
    positions = fill(ledger)
    for quick in (False, True):
        report = verify_store(ledger.store, quick=quick)
        assert report.ok and report.findings == []
        assert report.events_checked == len(positions) == report.chain_size
    assert report.head_hash == chain_row(ledger.store.url, positions[-1])[2]


def test_an_event_of_a_type_kei_does_not_know_verifies_clean(
    ledger: Ledger, key: SigningKey
) -> None:
    fill(ledger, 3)
    state = seal(
        stream="vendor-1", version=1, type_="vendor.thing.happened", schema_version=7,
        timestamp_us=1, payload=b"\xc4\x03raw", signer=key,
    )  # fmt: skip
    ledger.store.append(
        [PendingRecord("vendor-1", 1, "vendor.thing.happened", state)],
        sign_head=heads_by(ledger, key),
    )
    report = verify_store(ledger.store)
    assert report.ok, report.findings
    assert report.events_checked == 5


# -- content and signatures --------------------------------------------------------


def test_a_changed_payload_byte_is_content_changed(ledger: Ledger, store_url: str) -> None:
    pos = fill(ledger)[4]
    set_state(store_url, pos, flip(event_row(store_url, pos)[3], -1))
    assert found(ledger) == {(K.CONTENT_CHANGED, pos), (K.BAD_SIGNATURE, pos)}
    assert found(ledger, quick=True) == {(K.CONTENT_CHANGED, pos)}
    assert details(ledger, K.CONTENT_CHANGED) == ["stored bytes do not match the hash"]


def test_a_forged_signature_behind_a_relinked_chain_is_bad_signature(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    positions = fill(ledger)
    pos = positions[5]
    set_state(store_url, pos, flip(event_row(store_url, pos)[3], 20))  # inside the signature
    relink(store_url, pos)
    # the relinked chain no longer matches what the batch's head signed
    assert found(ledger) == {(K.BAD_SIGNATURE, pos), (K.BAD_HEAD_SIGNATURE, positions[-1])}
    assert details(ledger, K.BAD_SIGNATURE) == [f"signature by {key.key_id_hex} is invalid"]
    assert found(ledger, quick=True) == set()  # --quick trusts signatures


def test_an_event_signed_by_an_unknown_key_is_unknown_key(ledger: Ledger) -> None:
    fill(ledger, 3)
    stranger = SigningKey.generate(name="stranger")
    pos = append_signed_by(ledger, stranger)
    assert found(ledger) == {(K.UNKNOWN_KEY, pos), (K.BAD_HEAD_SIGNATURE, pos)}
    assert details(ledger, K.UNKNOWN_KEY) == [f"signed by unknown key {stranger.key_id_hex}"]


def test_an_event_signed_after_revocation_is_revoked_key(ledger: Ledger) -> None:
    fill(ledger, 3)
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    revoked = ledger.revoke_key(second.key_id_hex, "laptop stolen").position
    pos = append_signed_by(ledger, second)
    assert found(ledger) == {(K.REVOKED_KEY, pos), (K.BAD_HEAD_SIGNATURE, pos)}
    assert details(ledger, K.REVOKED_KEY) == [
        f"signed by key {second.key_id_hex} revoked at position {revoked}"
    ]


# -- the chain -------------------------------------------------------------------------


def test_a_changed_previous_hash_is_chain_broken(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    pos = positions[3]
    run_sql(store_url, "UPDATE kei_chain SET prev_hash = ? WHERE position = ?", (b"\x07" * 32, pos))
    assert found(ledger) == {(K.CHAIN_BROKEN, pos), (K.CONTENT_CHANGED, pos)}
    assert details(ledger, K.CHAIN_BROKEN) == [
        f"previous hash does not match the hash of position {positions[2]}"
    ]


def test_a_deleted_chain_row_is_chain_broken(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    run_sql(store_url, "DELETE FROM kei_chain WHERE position = ?", (positions[-1],))
    # and the batch's head signs a sequence the chain no longer reaches
    assert found(ledger) == {(K.CHAIN_BROKEN, positions[-1]), (K.TRUNCATED, None)}
    assert details(ledger, K.CHAIN_BROKEN) == ["event has no chain entry"]


def test_a_deleted_event_is_event_missing(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    gone, after = positions[4], positions[5]
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} = ?", (gone,))
    run_sql(store_url, "DELETE FROM kei_chain WHERE position = ?", (gone,))
    # fill() puts event i in stream agent-{i % 3} (positions[i + 1]: genesis first);
    # event 3 (agent-0 v2) is gone, so agent-0 jumps from version 1 to 3 at event 6
    assert found(ledger) == {(K.EVENT_MISSING, after), (K.VERSION_GAP, positions[7])}
    assert details(ledger, K.EVENT_MISSING) == ["sequence 4 missing before it"]
    assert details(ledger, K.VERSION_GAP) == ["stream 'agent-0' jumps from version 1 to 3"]


def test_an_event_row_deleted_under_its_chain_row_is_event_missing(
    ledger: Ledger, store_url: str
) -> None:
    positions = fill(ledger)
    gone, after = positions[2], positions[3]
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} = ?", (gone,))
    # one deletion, three findings (docs/events.md §5): the orphan chain row, the
    # sequence jump the scan sees, and the version gap in the event's stream
    assert found(ledger) == {
        (K.EVENT_MISSING, gone),
        (K.EVENT_MISSING, after),
        (K.VERSION_GAP, positions[5]),  # agent-1 now starts at version 2
    }
    assert "event of sequence 2 is gone" in details(ledger, K.EVENT_MISSING)


def test_a_deleted_genesis_is_event_missing(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} = ?", (positions[0],))
    run_sql(store_url, "DELETE FROM kei_chain WHERE position = ?", (positions[0],))
    report = verify_store(ledger.store, quick=True)
    assert (K.EVENT_MISSING, positions[1]) in {(f.kind, f.position) for f in report.findings}
    assert "log starts at sequence 1" in [f.detail for f in report.findings]


def swap(url: str, a: int, b: int) -> None:
    """Exchange two events, both rows each, keeping their positions."""
    col = pos_col(url)
    rows = {p: (event_row(url, p), chain_row(url, p)) for p in (a, b)}
    run_sql(url, f"DELETE FROM kei_events WHERE {col} IN (?, ?)", (a, b))
    for here, there in ((a, b), (b, a)):
        (stream, version, type_, state), (seq, prev, digest) = rows[there]
        run_sql(
            url,
            f"INSERT INTO kei_events ({col}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)",
            (here, stream, version, type_, state),
        )
        run_sql(
            url,
            "UPDATE kei_chain SET seq = ?, prev_hash = ?, hash = ? WHERE position = ?",
            (seq, prev, digest, here),
        )


def test_swapped_events_are_events_reordered(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    a, b = positions[4], positions[5]
    swap(store_url, a, b)
    assert found(ledger) == {
        (K.EVENT_MISSING, a),
        (K.CONTENT_CHANGED, a),
        (K.REORDERED, b),
        (K.CONTENT_CHANGED, b),
    }
    assert details(ledger, K.REORDERED) == [f"sequence 4 stored after sequence 5 (position {a})"]


def test_a_replayed_entry_is_duplicate(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    original = positions[3]
    col = pos_col(store_url)
    copy = run_sql(
        store_url,
        f"INSERT INTO kei_events (originator_id, originator_version, topic, state) "
        f"SELECT 'replayed', originator_version, topic, state FROM kei_events WHERE {col} = ? "
        f"RETURNING {col}",
        (original,),
    )[0][0]
    run_sql(
        store_url,
        "INSERT INTO kei_chain (position, seq, prev_hash, hash) "
        "SELECT ?, seq, prev_hash, hash FROM kei_chain WHERE position = ?",
        (copy, original),
    )
    findings = found(ledger, quick=True)
    assert (K.DUPLICATE, copy) in findings
    assert f"repeats the entry of sequence 3 at position {original}" in details(ledger, K.DUPLICATE)


def test_a_repeated_sequence_number_is_duplicate(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    a, b = positions[6], positions[7]
    run_sql(store_url, "UPDATE kei_chain SET seq = 6 WHERE position = ?", (b,))
    assert (K.DUPLICATE, b) in found(ledger)
    assert details(ledger, K.DUPLICATE) == [f"sequence 6 appears twice (also at position {a})"]


def test_every_finding_is_reported_in_position_order(ledger: Ledger, store_url: str) -> None:
    positions = fill(ledger)
    for pos in (positions[2], positions[6], positions[9]):
        set_state(store_url, pos, flip(event_row(store_url, pos)[3], -1))
    report = verify_store(ledger.store, quick=True)
    assert [(f.kind, f.position) for f in report.findings] == [
        (K.CONTENT_CHANGED, positions[2]),
        (K.CONTENT_CHANGED, positions[6]),
        (K.CONTENT_CHANGED, positions[9]),
    ]
    assert report.to_dict()["findings"][0] == {
        "kind": "content-changed",
        "position": positions[2],
        "detail": "stored bytes do not match the hash",
    }


def test_mangled_column_types_are_findings_not_crashes(
    make_ledger: Callable[[str], Ledger], sqlite_url: str
) -> None:
    """SQLite stores any type in any column; a forger's text or junk is still a finding."""
    ledger = make_ledger(sqlite_url)
    p = fill(ledger)
    run_sql(sqlite_url, "UPDATE kei_chain SET seq = 'abc' WHERE position = ?", (p[2],))
    run_sql(sqlite_url, "UPDATE kei_events SET state = 'text' WHERE rowid = ?", (p[4],))
    run_sql(sqlite_url, "UPDATE kei_events SET originator_version = 'v' WHERE rowid = ?", (p[6],))
    run_sql(
        sqlite_url,
        "UPDATE kei_events SET originator_id = CAST(? AS TEXT) WHERE rowid = ?",
        (b"\xff\xfe", p[8]),
    )
    positions = {pos for _, pos in found(ledger)}
    assert {p[2], p[4], p[6], p[8]} <= positions


def test_worker_processes_report_exactly_what_one_process_does(
    ledger: Ledger, store_url: str
) -> None:
    """Ranges checked in parallel are joined at their edges, even tampered edges."""
    positions = fill(ledger, 40)
    set_state(store_url, positions[7], flip(event_row(store_url, positions[7])[3], -1))
    swap(store_url, positions[13], positions[14])  # across a range edge (ranges of 7)
    run_sql(store_url, "DELETE FROM kei_chain WHERE position = ?", (positions[21],))
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} = ?", (positions[28],))
    limits = VerifyLimits(page=3, range_size=7, parallel_min=0)
    one = verify_store(ledger.store, jobs=1, limits=limits)
    two = verify_store(ledger.store, jobs=2, limits=limits)
    assert one.findings and two.findings == one.findings
    assert K.VERSION_GAP in {f.kind for f in two.findings}  # the pass beside the workers
    assert (two.events_checked, two.head_hash) == (one.events_checked, one.head_hash)


# -- the CLI -----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised ledger with a few events, in its own KEI_HOME."""
    home = tmp_path / "home"
    proc = kei(["init"], cli_env(home))
    assert proc.returncode == 0, proc.stderr
    with Ledger.open(
        f"sqlite:///{home / 'ledger.db'}", key=load_key(home / "keys/default.key")
    ) as ledger:
        fill(ledger, 4)
    return home


def test_cli_clean_log_exits_0(home: Path) -> None:
    proc = kei(["verify-chain"], cli_env(home))
    assert proc.returncode == Exit.OK, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("kei: OK: 5 events verified (chain, hashes and signatures) in ")
    assert "head sha256:" in proc.stderr


def test_cli_findings_exit_1_one_line_each(home: Path) -> None:
    url = f"sqlite:///{home / 'ledger.db'}"
    set_state(url, 3, flip(event_row(url, 3)[3], -1))
    proc = kei(["verify-chain"], cli_env(home))
    assert proc.returncode == Exit.FINDINGS
    assert proc.stdout.splitlines() == [
        "position 3: content-changed: stored bytes do not match the hash",
        f"position 3: bad-signature: signature by {load_key(home / 'keys/default.key').key_id_hex} is invalid",
    ]
    assert proc.stderr == "kei: FAIL: 2 findings in 5 events\n"
    proc = kei(["verify-chain", "--json", "--quick", "--jobs", "2"], cli_env(home))
    assert proc.returncode == Exit.FINDINGS
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["quick"] is True
    assert report["findings"] == [
        {"kind": "content-changed", "position": 3, "detail": "stored bytes do not match the hash"}
    ]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        pytest.param(["--jobs", "0"], "Invalid value for '--jobs'", id="jobs-0"),
        pytest.param(["--bogus"], "No such option: --bogus", id="unknown-flag"),
        pytest.param(["--checkpoint", "/nonexistent/cp"], "cannot read checkpoint", id="no-file"),
    ],
)
def test_cli_usage_errors_exit_2(home: Path, args: list[str], text: str) -> None:
    proc = kei(["verify-chain", *args], cli_env(home))
    assert proc.returncode == Exit.USAGE
    assert proc.stderr.startswith("kei: error: ") and text in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    ("store", "text"),
    [
        ("missing", "no ledger at"),
        ("corrupt", "not a readable SQLite database"),
        ("no-tables", "holds no kei ledger"),
        ("unreachable", "cannot connect to PostgreSQL"),
    ],
)
def test_cli_store_that_cannot_be_opened_exits_3(home: Path, store: str, text: str) -> None:
    db = {
        "missing": str(home / "nope" / "ledger.db"),
        "corrupt": str(home / "corrupt.db"),
        "no-tables": str(home / "empty.db"),
        "unreachable": "postgresql://postgres@127.0.0.1:9/kei",
    }[store]
    (home / "corrupt.db").write_bytes(os.urandom(4096))
    (home / "empty.db").write_bytes(b"")
    proc = kei(["verify-chain"], cli_env(home, db))
    assert proc.returncode == Exit.STORE, proc.stderr
    assert proc.stderr.startswith("kei: error: ") and text in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr
