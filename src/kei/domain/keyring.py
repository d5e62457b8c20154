"""The key registry, folded from the key events in the log.

Rules, checked here and in ``docs/events.md``:

1. The genesis event comes first (sequence 0) and is signed by the key it introduces.
2. ``kei.key.added`` and ``kei.key.revoked`` are signed by a key active at their position.
3. A key is active from the position of the event that added it up to and including
   the position of the event that revoked it (so a key may revoke itself).
4. Key events count only in the ``kei.keys`` stream; elsewhere they are ordinary
   events and change nothing (so the registry is one indexed stream read).
5. Key events whose signature or content is not valid change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import nacl.exceptions
import nacl.signing

from kei.domain import events
from kei.domain.envelope import Envelope, MalformedEnvelopeError, open_state, signed_message
from kei.domain.keys import key_id_for
from kei.domain.records import StoredRecord
from kei.errors import InputError


class KeyStatus(Enum):
    ACTIVE = "active"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    NOT_YET = "not-yet-added"


@dataclass(slots=True)
class KeyEntry:
    key_id: bytes
    public_key: bytes
    name: str
    added_at: int
    revoked_at: int | None = None
    reason: str = ""
    verifier: nacl.signing.VerifyKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.verifier = nacl.signing.VerifyKey(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.verifier.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


@dataclass(slots=True)
class KeyRing:
    """Which key was valid where. Built once, then queried by position."""

    keys: dict[bytes, KeyEntry] = field(default_factory=dict)
    ledger_id: str | None = None
    ledger_name: str = ""
    genesis_position: int | None = None

    def status_at(self, key_id: bytes, position: int) -> KeyStatus:
        entry = self.keys.get(key_id)
        if entry is None:
            return KeyStatus.UNKNOWN
        if position < entry.added_at:
            return KeyStatus.NOT_YET
        if entry.revoked_at is not None and position > entry.revoked_at:
            return KeyStatus.REVOKED
        return KeyStatus.ACTIVE

    def active_keys(self) -> list[KeyEntry]:
        return [k for k in self.keys.values() if k.revoked_at is None]

    def apply(self, record: StoredRecord) -> bool:
        """Fold one key event in; returns False (and changes nothing) when it is invalid."""
        if record.stream != events.SYSTEM_STREAM:
            return False
        try:
            env = open_state(record.state)
            payload = events.decode_payload(record.type, env.payload)
        except (MalformedEnvelopeError, InputError):
            return False
        if isinstance(payload, events.LedgerGenesis):
            return self._apply_genesis(record, env, payload)
        if not self._signed_by_active(record, env):
            return False
        if isinstance(payload, events.KeyAdded):
            return self._apply_added(record, payload)
        if isinstance(payload, events.KeyRevoked):
            return self._apply_revoked(record, payload)
        return False

    def _apply_genesis(
        self, record: StoredRecord, env: Envelope, payload: events.LedgerGenesis
    ) -> bool:
        if self.genesis_position is not None or record.seq not in (0, None):
            return False
        entry = _entry(payload.public_key, payload.key_name, record.position)
        if entry is None or entry.key_id != env.key_id or entry.key_id.hex() != payload.key_id:
            return False
        message = signed_message(record.stream, record.version, record.type, record.state)
        if not entry.verify(message, env.signature):
            return False
        self.keys[entry.key_id] = entry
        self.ledger_id, self.ledger_name = payload.ledger_id, payload.name
        self.genesis_position = record.position
        return True

    def _signed_by_active(self, record: StoredRecord, env: Envelope) -> bool:
        if self.status_at(env.key_id, record.position) is not KeyStatus.ACTIVE:
            return False
        message = signed_message(record.stream, record.version, record.type, record.state)
        return self.keys[env.key_id].verify(message, env.signature)

    def _apply_added(self, record: StoredRecord, payload: events.KeyAdded) -> bool:
        entry = _entry(payload.public_key, payload.name, record.position)
        if entry is None or entry.key_id.hex() != payload.key_id or entry.key_id in self.keys:
            return False
        self.keys[entry.key_id] = entry
        return True

    def _apply_revoked(self, record: StoredRecord, payload: events.KeyRevoked) -> bool:
        entry = self.keys.get(bytes.fromhex(payload.key_id)) if _is_hex(payload.key_id) else None
        if entry is None or entry.revoked_at is not None:
            return False
        entry.revoked_at, entry.reason = record.position, payload.reason
        return True


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _entry(public_hex: str, name: str, position: int) -> KeyEntry | None:
    if not _is_hex(public_hex) or len(public_hex) != 64:
        return None
    public_key = bytes.fromhex(public_hex)
    return KeyEntry(key_id_for(public_key), public_key, name, position)


def build_keyring(key_records: list[StoredRecord] | tuple[StoredRecord, ...]) -> KeyRing:
    """Fold the key events (in log order) into a KeyRing."""
    ring = KeyRing()
    for record in key_records:
        ring.apply(record)
    return ring
