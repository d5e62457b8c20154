"""Fail closed: key events that do not read as written, checkpoints signed by keys not
valid at their size, stream version gaps, the format byte and the genesis are all
findings (docs/events.md §4, §5), produced here by tampering with real stores.

Key events are rewritten the way a key holder (or a future kei) would write them:
re-signed with the ledger's key and relinked, so the only findings left are the ones
under test.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_verify_findings import (
    K,
    append_signed_by,
    details,
    event_row,
    fill,
    found,
    heads_by,
    relink,
    resign_heads,
    set_state,
)

from cli_helpers import run_sql
from kei.adapters.store.base import PendingRecord
from kei.app.ledger.ledger import Ledger
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.checkpoint import sign_tree_checkpoint
from kei.domain.log.envelope import open_state, seal
from kei.domain.log.keys import SigningKey
from kei.domain.log.versions import VersionChecker


def resign(url: str, pos: int, payload: Any, signer: SigningKey) -> None:
    """Replace the payload of the event at ``pos``, signed by ``signer``, chain relinked."""
    stream, version, type_, state = event_row(url, pos)
    env = open_state(state)
    raw = payload if isinstance(payload, bytes) else msgspec.msgpack.encode(payload)
    new = seal(
        stream=stream, version=version, type_=type_, schema_version=env.schema_version,
        timestamp_us=env.timestamp_us, payload=raw, signer=signer,
    )  # fmt: skip
    set_state(url, pos, new)
    relink(url, pos)
    resign_heads(url, signer)  # a key holder re-signs the heads over the rewritten chain


def revoked_second(ledger: Ledger) -> tuple[SigningKey, int]:
    """A second key, added then revoked; (that key, the revocation's position)."""
    fill(ledger, 3)
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    return second, ledger.revoke_key(second.key_id_hex, "laptop stolen").position


# -- key events ----------------------------------------------------------------------


def test_a_future_schema_revocation_with_an_extra_field_still_revokes(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    second, at = revoked_second(ledger)
    payload = {"key_id": second.key_id_hex, "reason": "stolen", "revoked_by": "ops"}
    resign(store_url, at, payload, key)
    pos = append_signed_by(ledger, second)
    assert found(ledger) == {(K.REVOKED_KEY, pos), (K.BAD_HEAD_SIGNATURE, pos)}


def test_a_revocation_missing_a_field_is_a_finding_and_still_revokes(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    second, at = revoked_second(ledger)
    resign(store_url, at, {"key_id": second.key_id_hex}, key)
    pos = append_signed_by(ledger, second)
    assert found(ledger) == {
        (K.BAD_KEY_EVENT, at),
        (K.REVOKED_KEY, pos),
        (K.BAD_HEAD_SIGNATURE, pos),
    }
    assert details(ledger, K.BAD_KEY_EVENT) == [
        f"kei.key.revoked: reason missing or not text; key {second.key_id_hex} is revoked anyway"
    ]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"reason": "stolen"}, id="no-key-id"),
        pytest.param({"key_id": 7, "reason": "stolen"}, id="key-id-not-text"),
        pytest.param(b"\xc1", id="not-msgpack"),
        pytest.param(msgspec.msgpack.encode(["a", "b"]), id="not-a-map"),
    ],
)
def test_an_unreadable_revocation_revokes_every_key_active_there(
    ledger: Ledger, store_url: str, key: SigningKey, payload: Any
) -> None:
    second, at = revoked_second(ledger)
    resign(store_url, at, payload, key)
    by_second = append_signed_by(ledger, second, "s")
    by_first = append_signed_by(ledger, key, "f")
    assert found(ledger) == {
        (K.BAD_KEY_EVENT, at),
        (K.REVOKED_KEY, by_second),
        (K.REVOKED_KEY, by_first),
        (K.BAD_HEAD_SIGNATURE, by_second),  # each head is signed by its (revoked) writer
        (K.BAD_HEAD_SIGNATURE, by_first),
    }
    assert "every key active here is revoked" in details(ledger, K.BAD_KEY_EVENT)[0]


def test_an_added_key_missing_its_public_key_is_a_finding_and_never_trusted(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    fill(ledger, 2)
    second = SigningKey.generate(name="second")
    at = ledger.add_key(second).position
    resign(store_url, at, {"key_id": second.key_id_hex, "name": "second"}, key)
    pos = append_signed_by(ledger, second)
    assert found(ledger) == {
        (K.BAD_KEY_EVENT, at),
        (K.UNKNOWN_KEY, pos),
        (K.BAD_HEAD_SIGNATURE, pos),
    }


def test_an_added_key_with_an_extra_field_is_trusted(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    second = SigningKey.generate(name="second")
    at = ledger.add_key(second).position
    payload = {
        "key_id": second.key_id_hex,
        "public_key": second.public_key.hex(),
        "name": "second",
        "expires": "2030-01-01",
    }
    resign(store_url, at, payload, key)
    append_signed_by(ledger, second)
    assert found(ledger) == set()


# -- genesis and format ----------------------------------------------------------------


def test_a_second_genesis_is_second_genesis(ledger: Ledger, key: SigningKey) -> None:
    fill(ledger, 2)
    stream = events.SYSTEM_STREAM
    version = ledger.store.stream_version(stream) + 1
    genesis = events.LedgerGenesis(
        ledger_id="another", name="another", key_id=key.key_id_hex,
        public_key=key.public_key.hex(),
    )  # fmt: skip
    state = seal(
        stream=stream, version=version, type_=events.GENESIS, schema_version=1,
        timestamp_us=1_764_000_000_000_000, payload=events.encode_payload(genesis), signer=key,
    )  # fmt: skip
    record = PendingRecord(stream, version, events.GENESIS, state)
    pos = ledger.store.append([record], sign_head=heads_by(ledger, key))[0].position
    assert found(ledger) == {(K.SECOND_GENESIS, pos)}
    assert verify_store(ledger.store).ledger_id != "another"


def test_a_genesis_that_does_not_verify_is_bad_genesis(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    positions = fill(ledger, 2)
    stranger = SigningKey.generate(name="stranger")
    genesis = msgspec.msgpack.decode(open_state(event_row(store_url, positions[0])[3]).payload)
    resign(store_url, positions[0], genesis, stranger)  # signed by a key it does not name
    assert (K.BAD_GENESIS, positions[0]) in found(ledger)
    assert (K.BAD_KEY_EVENT, positions[0]) in found(ledger)


def test_a_bad_format_byte_is_bad_format(ledger: Ledger, store_url: str, key: SigningKey) -> None:
    positions = fill(ledger, 4)
    pos = positions[2]
    state = event_row(store_url, pos)[3]
    set_state(store_url, pos, b"\x02" + state[1:])
    relink(store_url, pos)
    resign_heads(store_url, key)
    assert found(ledger) == {(K.BAD_FORMAT, pos)}
    assert details(ledger, K.BAD_FORMAT) == ["no readable signature: format byte is 0x02, not 0x01"]


# -- stream versions -------------------------------------------------------------------


def test_a_skipped_stream_version_is_version_gap(ledger: Ledger, key: SigningKey) -> None:
    fill(ledger, 3)
    version = ledger.store.stream_version("agent-0") + 2
    state = seal(
        stream="agent-0", version=version, type_="agent.merged", schema_version=1,
        timestamp_us=1_764_000_000_000_000,
        payload=events.encode_payload(events.AgentMerged(agent_id="agent-0")), signer=key,
    )  # fmt: skip
    record = PendingRecord("agent-0", version, "agent.merged", state)
    pos = ledger.store.append([record], sign_head=heads_by(ledger, key))[0].position
    assert found(ledger) == {(K.VERSION_GAP, pos)}
    assert details(ledger, K.VERSION_GAP) == ["stream 'agent-0' jumps from version 1 to 3"]


def test_versions_stored_out_of_position_order_are_version_gap(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    """Swap the versions of two events of one stream (re-signed: the signature covers
    the version): each stream still counts 1, 2 but not in position order."""
    positions = fill(ledger, 6)  # agent-0 at events 0 and 3
    first, second = positions[1], positions[4]
    col = "rowid" if store_url.startswith("sqlite") else "notification_id"
    run_sql(store_url, f"UPDATE kei_events SET originator_version = 99 WHERE {col} = ?", (first,))
    run_sql(store_url, f"UPDATE kei_events SET originator_version = 1 WHERE {col} = ?", (second,))
    run_sql(store_url, f"UPDATE kei_events SET originator_version = 2 WHERE {col} = ?", (first,))
    for pos in (first, second):
        resign(store_url, pos, open_state(event_row(store_url, pos)[3]).payload, key)
    assert found(ledger) == {(K.VERSION_GAP, first)}
    assert details(ledger, K.VERSION_GAP) == [
        f"stream 'agent-0' version 2 is stored before version 1 (position {second})"
    ]


# -- checkpoints -----------------------------------------------------------------------


def checkpoint_by(ledger: Ledger, signer: SigningKey) -> str:
    report = verify_store(ledger.store, quick=True)
    assert report.ledger_id is not None and report.tree_root is not None
    return sign_tree_checkpoint(report.ledger_id, report.tree_size, report.tree_root, signer)


def test_a_checkpoint_signed_by_a_revoked_key_is_checkpoint_invalid(
    ledger: Ledger, key: SigningKey
) -> None:
    second, _ = revoked_second(ledger)
    fill(ledger, 1)  # the log now ends after the revocation
    report = verify_store(ledger.store, checkpoint_text=checkpoint_by(ledger, second))
    assert [(f.kind, f.position) for f in report.findings] == [(K.BAD_CHECKPOINT, None)]
    assert "not valid at its size" in report.findings[0].detail
    assert verify_store(ledger.store, checkpoint_text=checkpoint_by(ledger, key)).ok


def test_a_checkpoint_signed_before_the_revocation_stays_valid(ledger: Ledger) -> None:
    fill(ledger, 2)
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    text = checkpoint_by(ledger, second)
    ledger.revoke_key(second.key_id_hex, "rotated")
    fill(ledger, 1)
    assert verify_store(ledger.store, checkpoint_text=text).ok


def test_a_checkpoint_signed_by_a_key_added_after_its_size_is_checkpoint_invalid(
    ledger: Ledger,
) -> None:
    fill(ledger, 2)
    report = verify_store(ledger.store, quick=True)
    assert report.ledger_id is not None and report.tree_root is not None
    later = SigningKey.generate(name="later")
    ledger.add_key(later)
    text = sign_tree_checkpoint(report.ledger_id, report.tree_size, report.tree_root, later)
    kinds = [f.kind for f in verify_store(ledger.store, checkpoint_text=text).findings]
    assert kinds == [K.BAD_CHECKPOINT]


# -- the version check, as a property ---------------------------------------------------


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=6)),
        max_size=30,
        unique=True,
    ),
    st.randoms(use_true_random=False),
)
def test_version_gaps_are_found_exactly_when_a_stream_does_not_count_1_2_3(
    rows: list[tuple[str, int]], rnd: Any
) -> None:
    """Positions are a random order of the (stream, version) rows; a stream is clean
    exactly when its versions, in position order, are 1, 2, ..., n."""
    order = list(range(len(rows)))
    rnd.shuffle(order)
    placed = [(stream, version, pos) for (stream, version), pos in zip(rows, order, strict=True)]
    checker = VersionChecker()
    checker.feed(sorted(placed, key=lambda r: (r[0], r[1])))
    flagged = {f.detail.split("'")[1] for f in checker.findings}
    for stream in ("a", "b", "c"):
        in_position_order = [v for s, v, _ in sorted(placed, key=lambda r: r[2]) if s == stream]
        clean = in_position_order == list(range(1, len(in_position_order) + 1))
        assert (stream not in flagged) == clean
