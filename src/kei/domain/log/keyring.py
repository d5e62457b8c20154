"""The key registry, folded from the key events in the log.

Rules, checked here and in ``docs/events.md``:

1. The genesis event comes first (sequence 0) and is signed by the key it introduces.
2. ``kei.key.added`` and ``kei.key.revoked`` are signed by a key active at their position.
3. A key is active from the position of the event that added it up to and including
   the position of the event that revoked it (so a key may revoke itself).
4. Key events count only in the ``kei.keys`` stream; elsewhere they are ordinary
   events and change nothing (so the registry is one indexed stream read).
5. Key events whose signature is not valid change nothing (the scan reports them).
6. Fail closed (``docs/events.md`` §4): key payloads are read field by field, so a
   field a future schema adds is ignored and a missing or mistyped one is a problem
   (``KeyProblem``, reported as a finding), never a silent skip. A revocation whose
   key id can be read revokes that key whatever else is wrong with it; a revocation
   whose key id cannot be read (or whose envelope or payload cannot be read at all)
   revokes every key active at its position, since any of them may be the one meant.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Final

import nacl.bindings
import nacl.exceptions
from msgspec import Struct, field

from kei.domain import events
from kei.domain.log.envelope import KEY_ID_LEN, Envelope, open_state, signed_message
from kei.domain.log.findings import FindingKind
from kei.domain.log.keys import key_id_for
from kei.domain.log.records import StoredRecord
from kei.errors import MalformedEnvelopeError

BAD_KEY_EVENT: Final = FindingKind.BAD_KEY_EVENT
SECOND_GENESIS: Final = FindingKind.SECOND_GENESIS


class KeyEntry(Struct):
    key_id: bytes
    public_key: bytes
    name: str
    added_at: int
    revoked_at: int | None = None
    reason: str = ""

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != nacl.bindings.crypto_sign_BYTES:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.public_key)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


class KeyProblem(Struct, frozen=True):
    """A key event that was not applied as written; ``kind`` names the finding."""

    position: int
    kind: str
    detail: str


class KeyRing(Struct):
    """Which key was valid where. Built once, then queried by position."""

    keys: dict[bytes, KeyEntry] = field(default_factory=dict)
    ledger_id: str | None = None
    ledger_name: str = ""
    genesis_position: int | None = None
    signed_heads: bool = False
    problems: list[KeyProblem] = field(default_factory=list)

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
        """Fold one key event in; returns False when it changed nothing.

        Never drops a key event silently: what cannot be applied as written is
        recorded in ``problems`` (rule 6).
        """
        if record.stream != events.SYSTEM_STREAM or record.type not in events.KEY_EVENT_TYPES:
            return False
        try:
            env = open_state(record.state)
        except MalformedEnvelopeError as exc:
            return self._unreadable(record, f"envelope cannot be read: {exc}")
        fields = _payload_fields(env.payload)
        if record.type == events.GENESIS:
            return self._apply_genesis(record, env, fields)
        if not self._signed_by_active(record, env):
            return False
        if fields is None:
            return self._unreadable(record, "payload is not a msgpack map")
        if record.type == events.KEY_ADDED:
            return self._apply_added(record, fields)
        return self._apply_revoked(record, fields)

    def _problem(self, record: StoredRecord, detail: str, kind: str = BAD_KEY_EVENT) -> None:
        self.problems.append(KeyProblem(record.position, kind, f"{record.type}: {detail}"))

    def _unreadable(self, record: StoredRecord, detail: str) -> bool:
        """A key event that cannot be read: for a revocation, every active key is suspect."""
        if record.type != events.KEY_REVOKED:
            self._problem(record, detail)
            return False
        suspects = [
            k for k in self.keys.values() if k.revoked_at is None and k.added_at <= record.position
        ]
        for entry in suspects:
            entry.revoked_at = record.position
            entry.reason = f"unreadable revocation at position {record.position}"
        names = ", ".join(k.key_id.hex() for k in suspects) or "none"
        self._problem(record, f"{detail}; every key active here is revoked: {names}")
        return bool(suspects)

    def _apply_genesis(
        self, record: StoredRecord, env: Envelope, fields: dict[str, Any] | None
    ) -> bool:
        if self.genesis_position is not None:
            where = f"the genesis is at position {self.genesis_position}"
            self._problem(record, f"a second genesis ({where}); ignored", SECOND_GENESIS)
            return False
        if record.seq not in (0, None):
            return False  # reported as bad-genesis: the first entry is not a genesis
        values = _read(fields, ("ledger_id", "name", "key_id", "public_key"), ("key_name",))
        if isinstance(values, str):
            self._problem(record, values)
            return False
        ledger_id, name, key_hex, public_hex, key_name = values
        entry = _entry(public_hex, key_name, record.position)
        if entry is None or entry.key_id != env.key_id or entry.key_id.hex() != key_hex:
            self._problem(record, "its key is not the key that signed it")
            return False
        message = signed_message(record.stream, record.version, record.type, record.state)
        if not entry.verify(message, env.signature):
            return False
        self.keys[entry.key_id] = entry
        self.ledger_id, self.ledger_name = ledger_id, name
        self.signed_heads = _signed_heads(self, record, fields)
        self.genesis_position = record.position
        return True

    def _signed_by_active(self, record: StoredRecord, env: Envelope) -> bool:
        if self.status_at(env.key_id, record.position) is not KeyStatus.ACTIVE:
            return False
        message = signed_message(record.stream, record.version, record.type, record.state)
        return self.keys[env.key_id].verify(message, env.signature)

    def _apply_added(self, record: StoredRecord, fields: dict[str, Any]) -> bool:
        values = _read(fields, ("key_id", "public_key"), ("name",))
        if isinstance(values, str):
            self._problem(record, f"{values}; the key is not added")
            return False
        key_hex, public_hex, name = values
        entry = _entry(public_hex, name, record.position)
        if entry is None or entry.key_id.hex() != key_hex:
            self._problem(record, "public_key is not an ed25519 key matching key_id")
            return False
        if entry.key_id in self.keys:
            return False
        self.keys[entry.key_id] = entry
        return True

    def _apply_revoked(self, record: StoredRecord, fields: dict[str, Any]) -> bool:
        key_hex = fields.get("key_id")
        if not (isinstance(key_hex, str) and len(key_hex) == 2 * KEY_ID_LEN and _is_hex(key_hex)):
            return self._unreadable(record, "key_id missing or not a key id")
        entry = self.keys.get(bytes.fromhex(key_hex))
        if entry is None:
            self._problem(record, f"names key {key_hex}, which was never added")
            return False
        reason = fields.get("reason")
        if not isinstance(reason, str):
            self._problem(record, f"reason missing or not text; key {key_hex} is revoked anyway")
            reason = ""
        if entry.revoked_at is not None:
            return False
        entry.revoked_at, entry.reason = record.position, reason
        return True


class KeyStatus(Enum):
    """What a key was at one position (``KeyRing.status_at``)."""

    ACTIVE = "active"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    NOT_YET = "not-yet-added"


def _signed_heads(ring: KeyRing, record: StoredRecord, fields: dict[str, Any] | None) -> bool:
    """The genesis's ``signed_heads`` flag; a value that is not a boolean is a problem
    and counts as True (fail closed: heads are then required)."""
    value = (fields or {}).get("signed_heads", False)
    if type(value) is not bool:
        ring._problem(record, "field signed_heads is not a boolean; heads are required")
        return True
    return value


def _payload_fields(raw: bytes) -> dict[str, Any] | None:
    """The payload as a map of field name to value, any fields tolerated; None if not one."""
    value = events.decode_untyped(raw)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return None
    return value


def _read(
    fields: dict[str, Any] | None, required: tuple[str, ...], optional: tuple[str, ...]
) -> list[str] | str:
    """The text fields named, required then optional (default ""); a problem as a str."""
    if fields is None:
        return "payload is not a msgpack map"
    values = []
    for name in (*required, *optional):
        value = fields.get(name, None if name in required else "")
        if not isinstance(value, str):
            return f"field {name} missing or not text"
        values.append(value)
    return values


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
