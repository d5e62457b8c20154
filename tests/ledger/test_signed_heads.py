"""Signed heads (docs/events.md §4b): the keyless attacker of issue 14.

The attacker can write to the database but holds no key. Each attack rewrites the log
through plain SQL and then recomputes every hash that needs no key (chain hashes,
previous-hash links; the stored Merkle node table is dropped), so every per-event
check passes. Without signed heads ``verify-chain`` said OK to all of them; with them,
each is a head finding, with no checkpoint. What heads do not catch (truncation back
to an earlier head) is pinned down too, and caught by a checkpoint.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_verify_findings import pos_col

from cli_helpers import run_sql
from kei.adapters.store.base import PendingRecord
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.envelope import GENESIS_PREV, HEADER_LEN, chain_hash, open_state, seal
from kei.domain.log.findings import FindingKind
from kei.domain.log.heads import head_message
from kei.domain.log.keys import SigningKey
from kei.errors import VerificationError

K = FindingKind
HEAD_KINDS = {K.BAD_HEAD_SIGNATURE, K.HEAD_MISSING, K.UNSIGNED_TAIL, K.TRUNCATED}
"""What the head check reports (``truncated``: a head signs a sequence past the end)."""
Row = tuple[int, str, int, str, bytes]


def kinds(ledger: Ledger, **kwargs: Any) -> set[FindingKind]:
    return {f.kind for f in verify_store(ledger.store, **kwargs).findings}


def batches(ledger: Ledger, sizes: list[int], prefix: str = "agent") -> None:
    """One append per size, each batch over its own stream (so no stream spans batches)."""
    for b, size in enumerate(sizes):
        stream = f"{prefix}-{b}"
        ledger.append(
            [
                NewEvent(stream, events.AgentForked(agent_id=stream, branch=f"b{i}"))
                for i in range(size)
            ]
        )


def log_rows(url: str) -> list[Row]:
    col = pos_col(url)
    rows = run_sql(
        url,
        f"SELECT {col}, originator_id, originator_version, topic, state FROM kei_events "
        f"ORDER BY {col}",
    )
    return [(int(p), str(s), int(v), str(t), bytes(st_)) for p, s, v, t, st_ in rows]


def rewrite(url: str, rows: list[Row]) -> None:
    """Replace the whole log by ``rows`` (at their positions) and recompute every hash
    that needs no key: the keyless attacker's last step."""
    col = pos_col(url)
    run_sql(url, "DELETE FROM kei_chain")
    run_sql(url, "DELETE FROM kei_events")
    run_sql(url, "DROP TABLE IF EXISTS kei_merkle_nodes")
    prev = GENESIS_PREV
    for seq, (pos, stream, version, type_, state) in enumerate(rows):
        run_sql(
            url,
            f"INSERT INTO kei_events ({col}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)",
            (pos, stream, version, type_, state),
        )
        digest = chain_hash(prev, seq, pos, stream, version, type_, state)
        run_sql(
            url,
            "INSERT INTO kei_chain (position, seq, prev_hash, hash) VALUES (?, ?, ?, ?)",
            (pos, seq, prev, digest),
        )
        prev = digest


def renumbered(rows: list[Row]) -> list[Row]:
    """The same events at positions 1, 2, 3, ... (as a fresh store would number them)."""
    return [(i + 1, *r[1:]) for i, r in enumerate(rows)]


def caught_by_heads_alone(ledger: Ledger) -> set[FindingKind]:
    """The attack is a finding, and only a head finding: every other check passes."""
    found = kinds(ledger)
    assert found, "the rewrite went unnoticed"
    assert found <= HEAD_KINDS, found
    return found


# -- a clean log ------------------------------------------------------------------------


def test_every_transaction_has_one_head_tiling_the_chain(ledger: Ledger) -> None:
    batches(ledger, [1, 3, 1, 5])
    heads = ledger.store.read_heads(after=-1, limit=100)
    assert [(h[0], h[1], h[2]) for h in heads] == [
        (0, 0, 0), (1, 1, 1), (2, 2, 4), (3, 5, 5), (4, 6, 10),
    ]  # fmt: skip
    assert verify_store(ledger.store).ok
    assert verify_store(ledger.store, quick=True).ok


def test_a_head_signs_the_documented_message(ledger: Ledger, key: SigningKey) -> None:
    batches(ledger, [2])
    position, first, last, key_id, signature = ledger.store.read_heads(after=0, limit=1)[0]
    entry = ledger.store.chain_at(last)
    assert entry is not None
    message = (
        b"kei/head/v1\x00"
        + len(ledger.ledger_id).to_bytes(4, "big")
        + ledger.ledger_id.encode()
        + first.to_bytes(8, "big")
        + last.to_bytes(8, "big")
        + position.to_bytes(8, "big")
        + entry.hash
    )
    assert message == head_message(ledger.ledger_id, first, last, position, entry.hash)
    assert bytes(key_id) == key.key_id
    nacl.signing.VerifyKey(key.public_key).verify(message, bytes(signature))


def test_key_events_and_locked_appends_sign_heads_too(ledger: Ledger) -> None:
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    ledger.revoke_key(second.key_id_hex, "rotated")
    ledger.append([NewEvent("shared", events.AgentMerged(agent_id="x"), 0)])  # locked path
    assert ledger.store.read_heads(after=-1, limit=100)[-1][2] == ledger.store.chain_size() - 1
    assert verify_store(ledger.store).ok


# -- the keyless attacker ---------------------------------------------------------------


def test_deleting_an_event_is_caught(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2, 2, 2])
    rows = log_rows(store_url)
    del rows[2]  # the last event of stream agent-0: no version gap is left behind
    rewrite(store_url, renumbered(rows))
    caught_by_heads_alone(ledger)


def test_inserting_an_event_is_caught(
    ledger: Ledger, store_url: str, key: SigningKey, tmp_path: Path
) -> None:
    batches(ledger, [2, 2])
    with Ledger.open(f"sqlite:///{tmp_path / 'other.db'}", key=key, create=True) as other:
        other.init("other")  # the same key signs another ledger
        other.append([NewEvent("elsewhere", events.AgentMerged(agent_id="elsewhere"))])
        foreign = log_rows(other.store.url)[-1]
    rows = log_rows(store_url)
    rows.insert(2, foreign)  # a validly signed event, in the middle
    rewrite(store_url, renumbered(rows))
    caught_by_heads_alone(ledger)


def test_reordering_events_is_caught(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2, 2, 2])
    rows = log_rows(store_url)
    rows[2], rows[3] = rows[3], rows[2]  # agent-0 v2 and agent-1 v1: versions still ascend
    rewrite(store_url, renumbered(rows))
    caught_by_heads_alone(ledger)


def test_renumbering_positions_is_caught(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2, 2])
    rows = log_rows(store_url)
    rewrite(store_url, [(10 * (i + 1), *r[1:]) for i, r in enumerate(rows)])
    caught_by_heads_alone(ledger)


def revoked_then_more(ledger: Ledger) -> tuple[SigningKey, int]:
    """A second key added then revoked (the last key event), then more events."""
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    at = ledger.revoke_key(second.key_id_hex, "laptop stolen").position
    batches(ledger, [2, 1])
    return second, at


def test_stripping_a_revocation_is_caught(ledger: Ledger, store_url: str) -> None:
    second, at = revoked_then_more(ledger)
    rewrite(store_url, [r for r in log_rows(store_url) if r[0] != at])
    caught_by_heads_alone(ledger)
    assert ledger.keyring(refresh=True).keys[second.key_id].revoked_at is None  # it worked


def test_an_append_by_a_revoked_key_after_stripping_its_revocation_is_caught(
    ledger: Ledger, store_url: str
) -> None:
    second, at = revoked_then_more(ledger)
    rewrite(store_url, [r for r in log_rows(store_url) if r[0] != at])
    with Ledger.open(store_url, key=second) as thief:  # the key checks now pass
        thief.append([NewEvent("forged", events.AgentMerged(agent_id="forged"))])
    assert K.BAD_HEAD_SIGNATURE in caught_by_heads_alone(ledger)


def test_without_heads_the_same_rewrite_verifies_clean(store_url: str, key: SigningKey) -> None:
    """The gap heads close: on a ledger written before them, the same forgery passes
    every per-event check (which is why flipping the genesis flag must be a finding)."""
    with legacy_ledger(store_url, key) as ledger:
        batches(ledger, [2, 2, 2])
        rows = log_rows(store_url)
        del rows[2]
        rewrite(store_url, renumbered(rows))
        assert verify_store(ledger.store).ok


# -- what heads require, and what they do not catch -------------------------------------


def test_an_event_appended_without_a_head_is_an_unsigned_tail(
    ledger: Ledger, key: SigningKey
) -> None:
    batches(ledger, [2])
    state = seal(
        stream="late", version=1, type_="agent.merged", schema_version=1, timestamp_us=1,
        payload=events.encode_payload(events.AgentMerged(agent_id="late")), signer=key,
    )  # fmt: skip
    pos = ledger.store.append([PendingRecord("late", 1, "agent.merged", state)])[0].position
    report = verify_store(ledger.store)
    assert [(f.kind, f.position) for f in report.findings] == [(K.UNSIGNED_TAIL, pos)]


def test_dropping_the_heads_table_is_an_unsigned_tail(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2])
    run_sql(store_url, "DROP TABLE kei_heads")
    first = log_rows(store_url)[0][0]
    assert [(f.kind, f.position) for f in verify_store(ledger.store).findings] == [
        (K.UNSIGNED_TAIL, first)
    ]


def test_a_deleted_head_row_is_head_missing(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2, 2, 2])
    run_sql(store_url, "DELETE FROM kei_heads WHERE position = 2")
    assert kinds(ledger) == {K.HEAD_MISSING}
    assert kinds(ledger, quick=True) == {K.HEAD_MISSING}


def test_deleting_the_tail_but_not_its_head_is_truncated(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2, 3])
    rewrite(store_url, log_rows(store_url)[:-3])
    assert kinds(ledger) == {K.TRUNCATED}


def test_truncation_back_to_an_earlier_head_needs_a_checkpoint(
    ledger: Ledger, store_url: str
) -> None:
    """The documented limit: the tail and its head rows gone leave a log every head rule
    accepts. A checkpoint written before catches it."""
    batches(ledger, [2])
    batches(ledger, [3], prefix="late")
    checkpoint = ledger.checkpoint()
    rewrite(store_url, log_rows(store_url)[:-3])
    top = ledger.store.read_heads(after=-1, limit=100)[-1][0]
    run_sql(store_url, "DELETE FROM kei_heads WHERE position = ?", (top,))
    assert verify_store(ledger.store).ok
    assert {f.kind for f in verify_store(ledger.store, checkpoint_text=checkpoint).findings} == {
        K.TRUNCATED
    }


def test_a_flipped_head_signature_is_caught_by_the_full_check_only(
    ledger: Ledger, store_url: str
) -> None:
    batches(ledger, [2, 2])
    sig = bytes(run_sql(store_url, "SELECT signature FROM kei_heads WHERE position = 1")[0][0])
    run_sql(
        store_url,
        "UPDATE kei_heads SET signature = ? WHERE position = 1",
        (bytes([sig[0] ^ 1]) + sig[1:],),
    )
    assert kinds(ledger) == {K.BAD_HEAD_SIGNATURE}
    assert kinds(ledger, quick=True) == set()  # --quick checks tiling and seqs, not signatures


def test_a_head_signed_by_a_key_revoked_before_it_is_bad_head_signature(
    ledger: Ledger, store_url: str, key: SigningKey
) -> None:
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    ledger.revoke_key(second.key_id_hex, "gone")
    batches(ledger, [1])
    last = ledger.store.read_heads(after=-1, limit=100)[-1]
    entry = ledger.store.chain_at(last[2])
    assert entry is not None
    message = head_message(ledger.ledger_id, last[1], last[2], last[0], entry.hash)
    run_sql(
        store_url,
        "UPDATE kei_heads SET key_id = ?, signature = ? WHERE position = ?",
        (second.key_id, second.sign(message), last[0]),
    )
    assert kinds(ledger) == {K.BAD_HEAD_SIGNATURE}


# -- the format: old ledgers, and no downgrade -------------------------------------------


def legacy_ledger(url: str, key: SigningKey) -> Ledger:
    """A ledger as kei wrote it before signed heads: genesis without the flag, no heads."""
    ledger = Ledger.open(url, key=key, create=True)
    genesis = {
        "ledger_id": "legacy-ledger", "name": "legacy", "key_id": key.key_id_hex,
        "public_key": key.public_key.hex(), "key_name": key.name,
    }  # fmt: skip
    state = seal(
        stream=events.SYSTEM_STREAM, version=1, type_=events.GENESIS, schema_version=1,
        timestamp_us=1_700_000_000_000_000, payload=msgspec.msgpack.encode(genesis), signer=key,
    )  # fmt: skip
    ledger.store.append([PendingRecord(events.SYSTEM_STREAM, 1, events.GENESIS, state)])
    run_sql(url, "DROP TABLE kei_heads")  # an old store never had it
    return ledger


def test_an_old_format_ledger_still_verifies_clean(store_url: str, key: SigningKey) -> None:
    with legacy_ledger(store_url, key) as ledger:
        assert ledger.keyring(refresh=True).signed_heads is False
        batches(ledger, [1, 3])
        assert ledger.store.read_heads(after=-1, limit=10) == []
        assert verify_store(ledger.store).ok


def test_flipping_the_genesis_flag_is_a_finding(ledger: Ledger, store_url: str) -> None:
    batches(ledger, [2])
    rows = log_rows(store_url)
    pos, stream, version, type_, state = rows[0]
    fields = msgspec.msgpack.decode(open_state(state).payload)
    assert fields["signed_heads"] is True
    fields["signed_heads"] = False
    head = state[:HEADER_LEN]  # the envelope (format, key id, signature, ...) kept as it is
    tampered = head + msgspec.msgpack.encode(fields)
    assert open_state(tampered).payload != open_state(state).payload
    rows[0] = (pos, stream, version, type_, tampered)
    rewrite(store_url, rows)
    run_sql(store_url, "DROP TABLE kei_heads")
    assert K.BAD_GENESIS in kinds(ledger)


# -- property: random batches verify; any changed head byte is a finding ----------------


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    pick=st.integers(0, 10_000),
    column=st.sampled_from(["position", "first_seq", "seq", "key_id", "signature"]),
    byte=st.integers(0, 63),
)
def test_random_batches_verify_and_any_head_tamper_is_a_finding(
    tmp_path_factory: pytest.TempPathFactory,
    key: SigningKey,
    sizes: list[int],
    pick: int,
    column: str,
    byte: int,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'ledger.db'}"
    with Ledger.open(url, key=key, create=True) as ledger:
        ledger.init("prop")
        batches(ledger, sizes)
        assert verify_store(ledger.store).ok
        heads = ledger.store.read_heads(after=-1, limit=100)
        target = heads[pick % len(heads)]
        index = ["position", "first_seq", "seq", "key_id", "signature"].index(column)
        value = target[index]
        changed: Any
        if isinstance(value, int):
            changed = value + 1000 if column == "position" else value + 1 + byte % 3
        else:
            raw = bytes(value)
            changed = _flip(raw, byte % len(raw))
        run_sql(url, f"UPDATE kei_heads SET {column} = ? WHERE position = ?", (changed, target[0]))
        assert kinds(ledger) & HEAD_KINDS


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# -- copies: bundles and JSON lines carry the heads -------------------------------------


def all_heads(url: str) -> list[tuple[Any, ...]]:
    rows = run_sql(url, "SELECT position, first_seq, seq, key_id, signature FROM kei_heads")
    return sorted((p, f, s, bytes(k), bytes(g)) for p, f, s, k, g in rows)


def test_a_bundle_round_trip_carries_the_heads(
    ledger: Ledger, store_url: str, tmp_path: Path
) -> None:
    from kei.app.bundle.export import export_bundle
    from kei.app.bundle.replay import replay_bundle

    batches(ledger, [3, 1, 2])
    bundle = tmp_path / "b.tar.zst"
    export_bundle(ledger, bundle)
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    replay_bundle(bundle, target)
    assert all_heads(target) == all_heads(store_url)
    with Ledger.open(target) as restored:
        assert verify_store(restored.store).ok


def exported_lines(ledger: Ledger) -> list[bytes]:
    from kei.app.jsonl.export import export_jsonl

    out = io.BytesIO()
    export_jsonl(ledger.store, out)
    return out.getvalue().splitlines(keepends=True)


def test_a_jsonl_round_trip_carries_the_heads(
    ledger: Ledger, store_url: str, tmp_path: Path
) -> None:
    from kei.app.jsonl.importing import import_jsonl

    batches(ledger, [3, 1])
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    import_jsonl(io.BytesIO(b"".join(exported_lines(ledger))), target)
    assert all_heads(target) == all_heads(store_url)
    with Ledger.open(target) as copy:
        assert verify_store(copy.store).ok


def test_jsonl_without_the_heads_of_a_ledger_that_signs_them_is_refused(
    ledger: Ledger, tmp_path: Path
) -> None:
    from kei.app.jsonl.importing import import_jsonl

    batches(ledger, [2])
    lines = [line for line in exported_lines(ledger) if b'"head"' not in line]
    target = tmp_path / "copy.db"
    with pytest.raises(VerificationError, match="signed heads do not hold"):
        import_jsonl(io.BytesIO(b"".join(lines)), f"sqlite:///{target}")
    assert not target.exists()


def test_jsonl_of_an_old_format_ledger_imports_without_heads(
    sqlite_url: str, key: SigningKey, tmp_path: Path
) -> None:
    from kei.app.jsonl.importing import import_jsonl

    with legacy_ledger(sqlite_url, key) as ledger:
        batches(ledger, [2, 1])
        lines = exported_lines(ledger)
    assert not [line for line in lines if b'"head"' in line]
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert import_jsonl(io.BytesIO(b"".join(lines)), target).new == 4
    with Ledger.open(target) as copy:
        assert verify_store(copy.store).ok


# -- copies that overlap the target's own log ---------------------------------------------


def grown_copy(ledger: Ledger, key: SigningKey, tmp_path: Path) -> str:
    """A copy of ``ledger`` (its heads verbatim) that then grew on its own: a source
    whose log and heads overlap ``ledger``'s, then go on."""
    from kei.app.jsonl.importing import import_jsonl

    source = f"sqlite:///{tmp_path / 'source.db'}"
    import_jsonl(io.BytesIO(b"".join(exported_lines(ledger))), source)
    with Ledger.open(source, key=key) as copy:
        batches(copy, [2, 3], prefix="later")
    return source


def extend(kind: str, source: str, target: str, key: SigningKey, tmp_path: Path) -> None:
    """Add ``source``'s log to ``target`` by a JSON-lines import or a bundle replay."""
    from kei.app.bundle.export import export_bundle
    from kei.app.bundle.replay import replay_bundle
    from kei.app.jsonl.importing import import_jsonl

    with Ledger.open(source, key=key) as copy:
        if kind == "jsonl":
            import_jsonl(io.BytesIO(b"".join(exported_lines(copy))), target)
            return
        bundle = tmp_path / "source.tar.zst"
        export_bundle(copy, bundle)
    replay_bundle(bundle, target)


@pytest.mark.parametrize("kind", ["jsonl", "bundle"])
def test_heads_the_target_holds_already_are_accepted_when_identical(
    ledger: Ledger, store_url: str, key: SigningKey, tmp_path: Path, kind: str
) -> None:
    batches(ledger, [3, 1])
    source = grown_copy(ledger, key, tmp_path)
    before = all_heads(store_url)
    extend(kind, source, store_url, key, tmp_path)
    assert all_heads(store_url) == all_heads(source)
    assert all_heads(store_url)[: len(before)] == before
    assert verify_store(ledger.store).ok


@pytest.mark.parametrize(("kind", "column"), [("jsonl", "signature"), ("bundle", "first_seq")])
def test_a_head_the_target_holds_otherwise_is_refused_and_nothing_is_written(
    ledger: Ledger, store_url: str, key: SigningKey, tmp_path: Path, kind: str, column: str
) -> None:
    batches(ledger, [3, 1])
    source = grown_copy(ledger, key, tmp_path)
    counter = 1
    value = run_sql(store_url, f"SELECT {column} FROM kei_heads WHERE position = ?", (counter,))
    changed = _flip(bytes(value[0][0]), 0) if column == "signature" else int(value[0][0]) + 1
    run_sql(store_url, f"UPDATE kei_heads SET {column} = ? WHERE position = ?", (changed, counter))
    events_before, heads_before = log_rows(store_url), all_heads(store_url)
    with pytest.raises(VerificationError, match=f"signed head {counter} ") as refused:
        extend(kind, source, store_url, key, tmp_path)
    assert "\n" not in str(refused.value) and refused.value.hint
    assert refused.value.kind == "head-conflict"
    assert (log_rows(store_url), all_heads(store_url)) == (events_before, heads_before)
