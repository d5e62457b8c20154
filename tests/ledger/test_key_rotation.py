"""Key rotation scenarios: which key may sign what, where, as ``verify-chain`` sees it.

A table of named scenarios in the manner of python-tuf's key-rotation tests. Each
scenario is a list of steps appended to a fresh ledger whose genesis key is ``k1``:

- ``("add", K, BY)``: a ``kei.key.added`` event for key K, signed by key BY;
- ``("revoke", K, BY)``: a ``kei.key.revoked`` event for K, signed by BY;
- ``("event", LABEL, BY)``: an ordinary agent event, signed by BY.

Steps go straight to the store (sealed by hand), so keys the ledger would refuse to
use can still sign, as an attacker with a stolen or revoked key would; each step's
transaction head is signed by the step's key too. ``expect`` maps a step's label to
the finding it must get (and a step whose key is unknown or revoked there also gets
``bad-head-signature``); every other step must verify clean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from kei.adapters.store.base import PendingRecord
from kei.app.ledger.ledger import Ledger
from kei.app.ledger.verification import verify_store
from kei.domain import events
from kei.domain.log.envelope import seal
from kei.domain.log.findings import FindingKind
from kei.domain.log.heads import head_signer
from kei.domain.log.keys import SigningKey

K = FindingKind
BAD_KEY = {K.UNKNOWN_KEY, K.REVOKED_KEY}
Step = tuple[str, str, str]


@dataclass(frozen=True)
class Scenario:
    steps: list[Step]
    expect: dict[str, FindingKind] = field(default_factory=dict)
    registered: set[str] | None = None  # keys the ring must hold at the end, if given


SCENARIOS = {
    "signed-before-revocation-verifies": Scenario(
        [("add", "k2", "k1"), ("event", "e1", "k2"), ("revoke", "k2", "k1")],
    ),
    "signed-after-revocation-fails": Scenario(
        [("add", "k2", "k1"), ("revoke", "k2", "k1"), ("event", "e1", "k2")],
        {"e1": K.REVOKED_KEY},
    ),
    "signed-by-a-key-never-added": Scenario(
        [("event", "e1", "k9")],
        {"e1": K.UNKNOWN_KEY},
    ),
    "signed-before-the-key-was-added": Scenario(
        [("event", "e1", "k2"), ("add", "k2", "k1"), ("event", "e2", "k2")],
        {"e1": K.UNKNOWN_KEY},
    ),
    "key-added-by-a-revoked-key-is-not-registered": Scenario(
        [("add", "k2", "k1"), ("revoke", "k2", "k1"), ("add", "k3", "k2"), ("event", "e1", "k3")],
        {"add-k3": K.REVOKED_KEY, "e1": K.UNKNOWN_KEY},
        registered={"k1", "k2"},
    ),
    "key-added-by-an-unknown-key-is-not-registered": Scenario(
        [("add", "k3", "k9"), ("event", "e1", "k3")],
        {"add-k3": K.UNKNOWN_KEY, "e1": K.UNKNOWN_KEY},
        registered={"k1"},
    ),
    "a-key-may-revoke-itself": Scenario(
        [("add", "k2", "k1"), ("revoke", "k2", "k2"), ("event", "e1", "k2")],
        {"e1": K.REVOKED_KEY},
    ),
    "genesis-key-rotated-out": Scenario(
        [("add", "k2", "k1"), ("revoke", "k1", "k2"), ("event", "e1", "k2"), ("event", "e2", "k1")],
        {"e2": K.REVOKED_KEY},
    ),
    "revocation-by-a-revoked-key-changes-nothing": Scenario(
        [
            ("add", "k2", "k1"),
            ("revoke", "k2", "k1"),
            ("revoke", "k1", "k2"),
            ("event", "e1", "k1"),
        ],
        {"revoke-k1": K.REVOKED_KEY},
    ),
}


def label(step: Step) -> str:
    action, name, _ = step
    return name if action == "event" else f"{action}-{name}"


def append_step(ledger: Ledger, step: Step, keys: dict[str, SigningKey]) -> int:
    action, name, by = step
    if action == "event":
        stream, payload = name, events.encode_payload(events.AgentMerged(agent_id=name))
        type_ = "agent.merged"
    elif action == "add":
        stream, type_ = events.SYSTEM_STREAM, events.KEY_ADDED
        new = keys[name]
        payload = events.encode_payload(
            events.KeyAdded(key_id=new.key_id_hex, public_key=new.public_key.hex(), name=name)
        )
    else:
        stream, type_ = events.SYSTEM_STREAM, events.KEY_REVOKED
        payload = events.encode_payload(
            events.KeyRevoked(key_id=keys[name].key_id_hex, reason="rotation test")
        )
    version = ledger.store.stream_version(stream) + 1
    state = seal(
        stream=stream, version=version, type_=type_, schema_version=1,
        timestamp_us=1_764_000_000_000_000, payload=payload, signer=keys[by],
    )  # fmt: skip
    signer = keys[by]
    heads = head_signer(ledger.ledger_id, signer.key_id, signer.sign)
    record = PendingRecord(stream, version, type_, state)
    return ledger.store.append([record], sign_head=heads)[0].position


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_key_rotation(
    scenario: Scenario, sqlite_url: str, make_ledger: Callable[[str], Ledger], key: SigningKey
) -> None:
    ledger = make_ledger(sqlite_url)
    keys = {"k1": key} | {f"k{i}": SigningKey.generate(name=f"k{i}") for i in (2, 3, 9)}
    where = {label(step): append_step(ledger, step, keys) for step in scenario.steps}
    report = verify_store(ledger.store)
    expected = {(where[name], kind) for name, kind in scenario.expect.items()}
    expected |= {(pos, K.BAD_HEAD_SIGNATURE) for pos, kind in expected if kind in BAD_KEY}
    assert {(f.position, f.kind) for f in report.findings} == expected
    if scenario.registered is not None:
        names = {k.key_id: name for name, k in keys.items()}
        ring = ledger.keyring(refresh=True)
        assert {names[k.key_id] for k in ring.keys.values()} == scenario.registered
    assert verify_store(ledger.store, quick=True).ok  # keys are step 5 only


def test_revoked_key_error_text(sqlite_url: str, make_ledger: Callable[[str], Ledger]) -> None:
    ledger = make_ledger(sqlite_url)
    second = SigningKey.generate(name="second")
    ledger.add_key(second)
    revoked_at = ledger.revoke_key(second.key_id_hex, "laptop stolen").position
    pos = append_step(ledger, ("event", "e1", "k2"), {"k2": second})
    (finding,) = [f for f in verify_store(ledger.store).findings if f.kind is K.REVOKED_KEY]
    assert str(finding) == (
        f"position {pos}: revoked-key: signed by key {second.key_id_hex} "
        f"revoked at position {revoked_at}"
    )
