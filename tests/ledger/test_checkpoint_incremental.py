"""Incremental checkpoints (``app/ledger/checkpointing.py``) and the pin check in
``Ledger.verify``.

A ledger opened with a ``checkpoint_state`` folder remembers the last checkpoint it
signed; the next one checks only what was appended since. Every checkpoint it signs
must be byte for byte the one the whole-log path signs (ed25519 is deterministic), an
edit of the history it vouched for must be refused (or, for rows it never re-reads,
leave its signed root the original's, which ``verify-chain`` then holds against the
store), and a missing, damaged or foreign state must only cost speed. Both stores.
"""

from __future__ import annotations

import json
import logging
import stat
import tempfile
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pins import _wipe
from test_verify_findings import event_row, flip, pos_col, relink, set_state

from cli_helpers import cli_env, kei, run_sql
from kei.adapters.files.checkpoint_state import load_state, state_path
from kei.adapters.files.pins import Pin
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.checkpoint import parse_checkpoint
from kei.domain.log.findings import FindingKind
from kei.domain.log.identity import fingerprint
from kei.domain.log.keys import SigningKey
from kei.errors import InputError, LedgerStateError, VerificationError

INCREMENTAL = "checkpoint: checked %d entries after size %d"


def append(ledger: Ledger, n: int, tag: str = "") -> None:
    ledger.append(
        [
            NewEvent(
                f"agent-{i % 5}", events.AgentForked(agent_id=f"agent-{i % 5}", branch=f"{tag}{i}")
            )
            for i in range(n)
        ]
    )


def with_state(url: str, key: SigningKey, folder: Path) -> Ledger:
    return Ledger.open(url, key=key, checkpoint_state=folder)


def whole(url: str, key: SigningKey) -> str:
    """The checkpoint the whole-log path signs (no state)."""
    with Ledger.open(url, key=key) as plain:
        return plain.checkpoint()


def incremental_runs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    return [
        (int(r.args[0]), int(r.args[1]))  # type: ignore[index]
        for r in caplog.records
        if r.msg == INCREMENTAL
    ]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def tracked(
    store_url: str, key: SigningKey, state_dir: Path, make_ledger: Callable[[str], Ledger]
) -> Ledger:
    """An initialised ledger that keeps checkpoint state."""
    make_ledger(store_url)
    ledger = with_state(store_url, key, state_dir)
    append(ledger, 9)
    return ledger


def test_incremental_checkpoints_equal_the_whole_log_ones(
    tracked: Ledger, store_url: str, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kei.app.ledger.checkpointing")
    first = tracked.checkpoint()  # no state yet: the whole log
    assert first == whole(store_url, key)
    assert incremental_runs(caplog) == []
    sizes = [parse_checkpoint(first).size]
    for n in (1, 1000, 0, 300):
        append(tracked, n, tag=f"n{n}-")
        text = tracked.checkpoint()
        cp = parse_checkpoint(text)
        assert text == whole(store_url, key)
        assert cp.size == sizes[-1] + n
        sizes.append(cp.size)
    assert incremental_runs(caplog) == [(b - a, a) for a, b in pairwise(sizes)]
    report = verify_store(tracked.store, checkpoint_text=text)
    assert report.ok and report.tree_root == parse_checkpoint(text).root_hash
    tracked.close()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=5))
def test_any_sequence_of_appends_gives_the_whole_log_root(
    key: SigningKey, batches: list[int]
) -> None:
    """Across tile boundaries (256 leaves) and odd sizes, on SQLite."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'l.db'}"
        with Ledger.open(url, key=key, create=True, checkpoint_state=Path(tmp) / "s") as ledger:
            ledger.init("prop")
            ledger.checkpoint()
            for n in batches:
                append(ledger, n)
                assert ledger.checkpoint() == whole(url, key)


def test_the_state_file_is_private(tracked: Ledger, store_url: str, state_dir: Path) -> None:
    tracked.checkpoint()
    path = state_path(state_dir, store_url)
    assert [p.name for p in state_dir.iterdir() if p.suffix == ".json"] == [path.name]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_an_old_event_rewritten_and_rechained_is_refused(
    tracked: Ledger, store_url: str, state_dir: Path
) -> None:
    """The forger edits an old event and recomputes every chain hash after it: the
    anchor's hash changes, the whole log is checked against the last checkpoint signed
    here, which no longer matches: refused, naming the state file."""
    tracked.checkpoint()
    append(tracked, 3)
    victim = next(iter(tracked.read(after=1))).position
    set_state(store_url, victim, flip(event_row(store_url, victim)[3], 60))
    relink(store_url, victim)
    assert verify_store(tracked.store, quick=True).ok  # the chain alone looks clean
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    assert caught.value.kind == FindingKind.FORKED.value
    assert caught.value.hint is not None
    assert "no longer holds the checkpoint" in caught.value.hint
    assert str(state_path(state_dir, store_url)) in caught.value.hint
    with pytest.raises(VerificationError):
        tracked.checkpoint()  # and stays refused


def test_the_newest_events_cut_off_are_refused(tracked: Ledger, store_url: str) -> None:
    tracked.checkpoint()
    top = tracked.store.max_position()
    run_sql(store_url, "DELETE FROM kei_chain WHERE position >= ?", (top - 1,))
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} >= ?", (top - 1,))
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    assert caught.value.kind == FindingKind.TRUNCATED.value


def test_an_edited_new_event_is_refused_without_reading_the_old_ones(
    tracked: Ledger, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    tracked.checkpoint()
    append(tracked, 4)
    victim = tracked.store.max_position() - 1
    set_state(store_url, victim, flip(event_row(store_url, victim)[3], 60))
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    assert (caught.value.kind, caught.value.position) == (
        FindingKind.CONTENT_CHANGED.value,
        victim,
    )


def test_a_deleted_new_event_is_refused(tracked: Ledger, store_url: str) -> None:
    tracked.checkpoint()
    append(tracked, 4)
    victim = tracked.store.max_position() - 1
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} = ?", (victim,))
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    assert caught.value.kind == FindingKind.EVENT_MISSING.value


def test_an_old_row_edited_in_place_never_enters_the_signed_root(
    tracked: Ledger, store_url: str, key: SigningKey
) -> None:
    """An edit before the anchor that leaves the anchor alone is not re-read: the next
    checkpoint signs the root of the history checked before, and verify-chain holds
    that checkpoint against the store and names the edit."""
    before = tracked.checkpoint()
    append(tracked, 2)
    honest = whole(store_url, key)
    victim = next(iter(tracked.read(after=1))).position
    set_state(store_url, victim, flip(event_row(store_url, victim)[3], 60))
    text = tracked.checkpoint()
    assert text == honest and text != before
    found = {
        (f.kind, f.position) for f in verify_store(tracked.store, checkpoint_text=text).findings
    }
    assert (FindingKind.CONTENT_CHANGED, victim) in found


@pytest.mark.parametrize(
    "damage",
    ["garbage", "range", "root", "foreign-ledger", "foreign-key", "anchor-seq", "empty"],
)
def test_a_damaged_or_foreign_state_costs_only_speed(
    tracked: Ledger,
    store_url: str,
    key: SigningKey,
    state_dir: Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kei.app.ledger.checkpointing")
    tracked.checkpoint()
    append(tracked, 5)
    path = next(p for p in state_dir.iterdir() if p.suffix == ".json")
    doc = json.loads(path.read_text())
    if damage == "garbage":
        path.write_bytes(b"\x00not json")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        if damage == "range":
            doc["range"] = doc["range"][:-1]
        elif damage == "root":
            doc["range"][0] = doc["range"][-1] if len(doc["range"]) > 1 else "A" * 43 + "="
            doc["anchor"]["hash"] = doc["range"][0]
        elif damage == "foreign-ledger":
            doc["ledger_id"] = "00000000-0000-0000-0000-000000000000"
        elif damage == "foreign-key":
            other = SigningKey.generate(name="default")
            from kei.domain.log.checkpoint import sign_tree_checkpoint

            cp = parse_checkpoint(doc["checkpoint"])
            doc["checkpoint"] = sign_tree_checkpoint(
                cp.origin, cp.size, cp.root_hash, other, cp.extensions[1:]
            )
        elif damage == "anchor-seq":
            doc["anchor"]["seq"] += 1
        path.write_text(json.dumps(doc))
    caplog.clear()
    text = tracked.checkpoint()
    assert text == whole(store_url, key)
    assert incremental_runs(caplog) == []  # the whole log was checked
    state = load_state(state_dir, store_url)
    assert state is not None and state.checkpoint == text  # and the state is whole again
    append(tracked, 1)
    caplog.clear()
    assert tracked.checkpoint() == whole(store_url, key)
    assert incremental_runs(caplog) == [(1, parse_checkpoint(text).size)]


def test_a_revoked_signing_key_signs_no_checkpoint(tracked: Ledger, key: SigningKey) -> None:
    tracked.checkpoint()
    other = SigningKey.generate(name="second")
    tracked.add_key(other)
    tracked.key = other
    tracked.revoke_key(key.key_id_hex, "rotated")
    tracked.key = key
    with pytest.raises(LedgerStateError, match="revoked"):
        tracked.checkpoint()


def test_kei_checkpoint_keeps_its_state_in_kei_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home, f"sqlite:///{tmp_path / 'l.db'}")
    assert kei(["init"], env).returncode == 0
    for _ in range(2):
        done = kei(["checkpoint"], env)
        assert done.returncode == 0, done.stderr
    states = list((home / "checkpoint-state").glob("*.json"))
    assert len(states) == 1
    assert json.loads(states[0].read_text())["checkpoint"] == done.stdout


# -- the pin check in Ledger.verify --------------------------------------------


def test_verify_checks_the_pin_and_expectations(ledger: Ledger, key: SigningKey) -> None:
    append(ledger, 3)
    lid = ledger.ledger_id
    good = Pin(ledger.store.url, lid, fingerprint(key.public_key))
    assert ledger.verify(quick=True, pin=good).ok
    assert ledger.verify(quick=True, expect_ledger=lid, expect_key=key.public_key.hex()).ok
    assert ledger.verify(quick=True, expect_key=fingerprint(key.public_key)).ok
    other = SigningKey.generate(name="x")
    for kwargs in (
        {"pin": Pin(ledger.store.url, "another-ledger", good.genesis_key)},
        {"pin": Pin(ledger.store.url, lid, fingerprint(other.public_key))},
        {"expect_ledger": "another-ledger"},
        {"expect_key": other.key_id_hex},
    ):
        report = ledger.verify(quick=True, **kwargs)  # type: ignore[arg-type]
        assert [(f.kind, f.position) for f in report.findings] == [
            (FindingKind.PIN_MISMATCH, None)
        ], kwargs
    with pytest.raises(InputError):
        ledger.verify(quick=True, expect_key="not a key")


def test_a_history_re_signed_from_a_new_genesis_meets_the_pin(
    store_url: str, key: SigningKey
) -> None:
    with Ledger.open(store_url, key=key, create=True) as first:
        first.init("test")
        pin = Pin(first.store.url, first.ledger_id, fingerprint(key.public_key))
    _wipe(store_url)
    forger = SigningKey.generate(name="default")
    with Ledger.open(store_url, key=forger, create=True) as forged:
        forged.init("test")
        append(forged, 2)
        assert forged.verify().ok  # clean on its own
        kinds = [f.kind for f in forged.verify(pin=pin).findings]
        assert kinds == [FindingKind.PIN_MISMATCH, FindingKind.PIN_MISMATCH]


def test_a_stream_version_gap_after_the_checkpoint_is_refused(
    tracked: Ledger, store_url: str
) -> None:
    """A new event renumbered past the new one before it (hashes recomputed, as a forger
    would) continues no stream: a version-gap, found without reading old events."""
    tracked.checkpoint()
    append(tracked, 6)
    victim = tracked.store.max_position()
    version = event_row(store_url, victim)[1]  # agent-0, whose first new event came before
    run_sql(
        store_url,
        f"UPDATE kei_events SET originator_version = ? WHERE {pos_col(store_url)} = ?",
        (version + 5, victim),
    )
    relink(store_url, victim)
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    assert (caught.value.kind, caught.value.position) == (FindingKind.VERSION_GAP.value, victim)


def test_a_stream_that_skips_versions_across_the_checkpoint_is_refused(
    tracked: Ledger, store_url: str
) -> None:
    tracked.checkpoint()
    tracked.append([NewEvent("agent-0", events.AgentForked(agent_id="agent-0", branch="x"))])
    victim = tracked.store.max_position()
    version = event_row(store_url, victim)[1]
    run_sql(
        store_url,
        f"UPDATE kei_events SET originator_version = ? WHERE {pos_col(store_url)} = ?",
        (version + 1, victim),
    )
    relink(store_url, victim)
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    assert (caught.value.kind, caught.value.position) == (FindingKind.VERSION_GAP.value, victim)
    assert not verify_store(tracked.store, quick=True).ok  # the whole-log check agrees


@pytest.mark.parametrize("damage", ["delete", "renumber"])
def test_heads_of_the_new_transactions_are_checked(
    tracked: Ledger, store_url: str, damage: str
) -> None:
    """The fast path checks the signed heads of what was appended since the last
    checkpoint as the whole-log check does: a head row deleted (the tail is unsigned)
    or renumbered (the heads no longer tile) is refused, nothing signed."""
    tracked.checkpoint()
    append(tracked, 3)
    top = run_sql(store_url, "SELECT MAX(position) FROM kei_heads")[0][0]
    if damage == "delete":
        run_sql(store_url, "DELETE FROM kei_heads WHERE position = ?", (top,))
    else:
        run_sql(store_url, "UPDATE kei_heads SET position = ? WHERE position = ?", (top + 5, top))
    with pytest.raises(VerificationError) as caught:
        tracked.checkpoint()
    kinds = {FindingKind.UNSIGNED_TAIL.value, FindingKind.HEAD_MISSING.value}
    assert caught.value.kind in kinds


def test_a_clean_append_after_a_checkpoint_passes_the_head_check(tracked: Ledger) -> None:
    tracked.checkpoint()
    append(tracked, 3)
    append(tracked, 1)
    assert tracked.checkpoint()
