"""A stored event opened for reading: the envelope fields next to the raw record.

Opening does not verify; ``kei verify-chain`` and ``Ledger.verify`` do. The payload
is decoded on demand, typed when the event type is registered, untyped otherwise.
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from kei.domain import events
from kei.domain.log.envelope import FORMAT_V1, HEADER_LEN, KEY_ID_LEN, SIG_LEN
from kei.domain.log.records import StoredRecord

# The envelope's header in one unpack: format, key id, signature, schema version,
# timestamp (``state_parts`` takes four steps; a rebuild opens a million events).
_HEADER: Final = struct.Struct(f">B{KEY_ID_LEN}s{SIG_LEN}sHq")
assert _HEADER.size == HEADER_LEN, "the envelope layout changed: update _HEADER"


class RecordedEvent(msgspec.Struct, frozen=True, gc=False):
    """One event as read from the log (a Struct: cheap to build by the million).

    ``gc=False``: every field is an int, text, bytes or None, so an event can never
    be part of a reference cycle, and a million of them need not be tracked by the
    cycle collector (which would otherwise rescan them on every collection).
    """

    position: int
    seq: int | None
    stream: str
    version: int
    type: str
    schema_version: int
    timestamp_us: int
    key_id: str
    signature: bytes
    payload_bytes: bytes
    prev_hash: bytes | None
    hash: bytes | None

    @classmethod
    def from_record(cls, record: StoredRecord) -> RecordedEvent:
        state = record.state
        if len(state) < HEADER_LEN or state[0] != FORMAT_V1:  # as ``state_parts``
            schema, ts, key_id, sig, payload = 0, 0, "", b"", b""
        else:
            _, raw_key_id, sig, schema, ts = _HEADER.unpack_from(state)
            key_id, payload = raw_key_id.hex(), state[HEADER_LEN:]
        return cls(
            record.position, record.seq, record.stream, record.version, record.type,
            schema, ts, key_id, sig, payload, record.prev_hash, record.hash,
        )  # fmt: skip

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_us / 1_000_000, tz=UTC)

    def payload(self) -> events.Payload:
        """The typed payload; InputError for unregistered types or invalid bytes."""
        return events.decode_payload(self.type, self.payload_bytes)

    def payload_data(self) -> Any:
        """The payload as plain data, whatever its type."""
        return events.decode_untyped(self.payload_bytes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``--json`` outputs (hashes as ``sha256:`` hex)."""
        return {
            "position": self.position,
            "seq": self.seq,
            "time": self.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "type": self.type,
            "stream": self.stream,
            "version": self.version,
            "schema_version": self.schema_version,
            "key_id": self.key_id,
            "payload": _jsonable(self.payload_data()),
            "prev_hash": _hex(self.prev_hash),
            "hash": _hex(self.hash),
            "signature": "ed25519:" + self.signature.hex() if self.signature else None,
        }


def _hex(digest: bytes | None) -> str | None:
    return None if digest is None else "sha256:" + digest.hex()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
