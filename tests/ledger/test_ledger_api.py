"""The embeddable API on both stores: append, read, versions, batches, refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import kei
from kei import ConcurrencyError, InputError, Ledger, LedgerStateError, NewEvent, SigningKey
from kei.adapters.store.base import PendingRecord
from kei.domain import events
from kei.domain.log.heads import head_signer


def forked(agent: str) -> NewEvent:
    return NewEvent(agent, events.AgentForked(agent_id=agent, branch=f"agent/{agent}"))


def cost(agent: str, micro: int) -> NewEvent:
    return NewEvent(
        agent,
        events.CostRecorded(agent_id=agent, provider="anthropic", model="m", micro_cents=micro),
    )


def test_batch_gets_consecutive_versions_and_positions(ledger: Ledger) -> None:
    recorded = ledger.append([forked("a"), cost("a", 5), forked("b"), cost("a", 7)])
    assert [(e.stream, e.version) for e in recorded] == [("a", 1), ("a", 2), ("b", 1), ("a", 3)]
    positions = [e.position for e in recorded]
    assert positions == sorted(positions)
    assert [e.seq for e in recorded] == [1, 2, 3, 4]
    assert recorded[1].prev_hash == recorded[0].hash


def test_read_returns_what_was_appended(ledger: Ledger) -> None:
    ledger.append([forked("a"), cost("a", 1_500_000)])
    read = list(ledger.read(after=1))
    assert [e.type for e in read] == ["agent.forked", "cost.recorded"]
    payload = read[1].payload()
    assert isinstance(payload, events.CostRecorded)
    assert payload.micro_cents == 1_500_000
    assert payload.usage.input_tokens is None
    assert [e.version for e in ledger.read_stream("a")] == [1, 2]
    assert [e.type for e in ledger.last(1)] == ["cost.recorded"]


def test_expected_version_clash_raises_and_appends_nothing(ledger: Ledger) -> None:
    ledger.append([forked("a")])
    before = ledger.store.count()
    with pytest.raises(ConcurrencyError, match="taken by another writer"):
        ledger.append([NewEvent("a", events.AgentMerged(agent_id="a"), expected_version=0)])
    assert ledger.store.count() == before


def test_a_batch_with_one_clash_lands_nothing(ledger: Ledger) -> None:
    ledger.append([forked("a")])
    before = ledger.store.count()
    batch = [forked("fresh"), NewEvent("a", events.AgentMerged(agent_id="a"), expected_version=0)]
    with pytest.raises(ConcurrencyError):
        ledger.append(batch)
    assert ledger.store.count() == before
    assert ledger.read_stream("fresh") == []


def test_unknown_event_type_is_refused(ledger: Ledger) -> None:
    class Stranger(events.Payload, frozen=True, kw_only=True):
        x: int

    before = ledger.store.count()
    with pytest.raises(InputError, match="unknown event type Stranger"):
        ledger.append([NewEvent("a", Stranger(x=1))])
    assert ledger.store.count() == before


def test_empty_stream_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="non-empty stream"):
        ledger.append([NewEvent("", events.AgentMerged(agent_id="a"))])


def test_unregistered_key_cannot_append(ledger: Ledger) -> None:
    ledger.key = SigningKey.generate(name="stranger")
    with pytest.raises(LedgerStateError, match="not registered"):
        ledger.append([forked("a")])


def test_revoked_key_cannot_append_and_new_key_can(ledger: Ledger, key: SigningKey) -> None:
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    ledger.revoke_key(key.key_id_hex, "rotated")
    with pytest.raises(LedgerStateError, match="revoked at position"):
        ledger.append([forked("a")])
    ledger.key = second
    ledger.append([forked("a")])
    assert ledger.verify().ok


def test_last_active_key_cannot_be_revoked(ledger: Ledger, key: SigningKey) -> None:
    with pytest.raises(LedgerStateError, match="last active key"):
        ledger.revoke_key(key.key_id_hex, "oops")


def test_second_genesis_is_refused(ledger: Ledger) -> None:
    before = ledger.store.count()
    with pytest.raises(LedgerStateError, match="already exists"):
        ledger.init("again")
    assert ledger.store.count() == before


def test_uninitialised_store_refuses_appends(sqlite_url: str, key: SigningKey) -> None:
    with Ledger.open(sqlite_url, key=key, create=True) as ledger:
        with pytest.raises(LedgerStateError, match="no genesis event"):
            ledger.append([forked("a")])
        assert ledger.store.count() == 0


def test_checkpoint_names_the_ledger(ledger: Ledger) -> None:
    ledger.append([forked("a")])
    text = ledger.checkpoint()
    assert text.splitlines()[:2] == [ledger.ledger_id, "2"]
    assert ledger.verify(checkpoint=text).ok


def test_store_append_takes_raw_records(
    store_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    """Events of types this kei does not know are stored and chained like any other."""
    from kei.domain.log.envelope import seal

    ledger = make_ledger(store_url)
    state = seal(
        stream="x", version=1, type_="future.thing", schema_version=3, timestamp_us=0,
        payload=b"\x80", signer=key,
    )  # fmt: skip
    heads = head_signer(ledger.ledger_id, key.key_id, key.sign)  # as Ledger.append signs
    entries = ledger.store.append([PendingRecord("x", 1, "future.thing", state)], sign_head=heads)
    assert entries[0].seq == 1
    event = ledger.last(1)[0]
    assert (event.type, event.schema_version, event.payload_data()) == ("future.thing", 3, {})
    assert ledger.verify().ok


def test_public_api_is_sorted_and_importable() -> None:
    assert kei.__all__ == sorted(kei.__all__)
    for name in kei.__all__:
        assert getattr(kei, name) is not None


def test_key_event_outside_the_keys_stream_registers_nothing(
    ledger: Ledger, key: SigningKey
) -> None:
    """Only ``kei.keys`` holds the registry: a key.added elsewhere is an ordinary event."""
    from kei.domain.log.envelope import seal

    stranger = SigningKey.generate(name="smuggled")
    payload = events.KeyAdded(
        key_id=stranger.key_id_hex, public_key=stranger.public_key.hex(), name="smuggled"
    )
    state = seal(
        stream="elsewhere", version=1, type_=events.KEY_ADDED, schema_version=1,
        timestamp_us=0, payload=events.encode_payload(payload), signer=key,
    )  # fmt: skip
    heads = head_signer(ledger.ledger_id, key.key_id, key.sign)
    ledger.store.append([PendingRecord("elsewhere", 1, events.KEY_ADDED, state)], sign_head=heads)
    assert stranger.key_id not in ledger.keyring(refresh=True).keys
    assert ledger.verify().ok


def test_errors_never_show_the_database_password(pg_url: str, key: SigningKey) -> None:
    with_password = pg_url.replace("postgres@", "postgres:hunter2@", 1)
    assert "hunter2" in with_password
    with pytest.raises(kei.StoreNotInitialisedError) as caught:
        Ledger.open(with_password, key=key)
    assert "hunter2" not in str(caught.value)
    assert ":***@" in str(caught.value)
