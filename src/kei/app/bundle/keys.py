"""The ledger's keys as a bundle carries them (``proof/keys.json``).

The key ring is always folded from verified key events (``kei.domain.log.keyring``);
``proof/keys.json`` is a convenience copy for tools that read a bundle without kei:
one object per key, in the order the keys were added. Replay folds the ring from the
events and refuses a bundle whose copy says anything else.
"""

from __future__ import annotations

import msgspec

from kei.adapters.store.base import EventStore
from kei.domain import events
from kei.domain.log.keyring import KeyRing, build_keyring
from kei.domain.log.records import StoredRecord


class KeyInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One key of the ledger as it stood at the bundle's head."""

    key_id: str
    public_key: str
    name: str
    added_at: int
    revoked_at: int | None
    reason: str


_ENCODE = msgspec.json.Encoder()


def ring_of(records: list[StoredRecord], head: int) -> KeyRing:
    """The key ring folded from the key events at positions up to ``head``."""
    chosen = sorted((r for r in records if r.position <= head), key=lambda r: r.position)
    return build_keyring(chosen)


def ring_at(store: EventStore, head: int) -> KeyRing:
    """The key ring of ``store``'s log up to position ``head``."""
    return ring_of(list(store.read_stream(events.SYSTEM_STREAM)), head)


def keys_document(ring: KeyRing) -> bytes:
    """The bytes of ``proof/keys.json`` for ``ring``."""
    keys = sorted(ring.keys.values(), key=lambda k: (k.added_at, k.key_id))
    infos = [
        KeyInfo(k.key_id.hex(), k.public_key.hex(), k.name, k.added_at, k.revoked_at, k.reason)
        for k in keys
    ]
    return _ENCODE.encode(infos) + b"\n"
