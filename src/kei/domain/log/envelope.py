"""The byte layout of one stored event: the envelope, the signed message, the chain hash.

This module is the whole storage format; ``docs/events.md`` describes the same bytes
for anyone writing an independent verifier. Rules:

- Hash and sign the stored bytes exactly; never re-encode a decoded event to check it.
- Every variable-length field is length-prefixed, every integer is big-endian, and
  each digest starts with a domain-separation tag, so no two different events or
  chain entries can produce the same input to SHA-256 or ed25519.
- The signature covers stream, version, type, schema version, timestamp, key id and
  payload; the chain hash also covers the signature, the log sequence number and
  the position, so it fixes order and completeness.

Example::

    state = seal(stream="agent-1", version=1, type="agent.forked", schema_version=1,
                 timestamp_us=1_764_000_000_000_000, payload=b"\\x80", signer=signer)
    opened = open_state(state)   # -> Envelope, no checks
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import msgspec

from kei.errors import MalformedEnvelopeError

FORMAT_V1: Final = 0x01
EVENT_TAG: Final = b"kei/event/v1\x00"
CHAIN_TAG: Final = b"kei/chain/v1\x00"
KEY_ID_LEN: Final = 8
SIG_LEN: Final = 64
HASH_LEN: Final = 32
GENESIS_PREV: Final = bytes(HASH_LEN)

_SIG_START: Final = 1 + KEY_ID_LEN
_SIG_END: Final = _SIG_START + SIG_LEN
HEADER_LEN: Final = _SIG_END + 2 + 8
_U16_I64 = struct.Struct(">Hq")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U64_U64 = struct.Struct(">QQ")
_FORMAT_BYTE: Final = bytes((FORMAT_V1,))
_sha256 = hashlib.sha256


class Signer(Protocol):
    """Anything that can sign bytes with an ed25519 key it names by id."""

    @property
    def key_id(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class Envelope(msgspec.Struct, frozen=True):
    """The parsed parts of a stored ``state`` blob; nothing here is verified."""

    format: int
    key_id: bytes
    signature: bytes
    schema_version: int
    timestamp_us: int
    payload: bytes


@functools.lru_cache(maxsize=8192)
def _lp(text: str) -> bytes:
    """Length-prefixed UTF-8; cached, because streams and types repeat on every event."""
    raw = text.encode("utf-8")
    return _U32.pack(len(raw)) + raw


def identity_prefix(stream: str, version: int, type_: str) -> bytes:
    """The part of the signed message that names where the event lives."""
    return b"".join((EVENT_TAG, _lp(stream), _U64.pack(version), _lp(type_)))


def signed_message(stream: str, version: int, type_: str, state: bytes) -> bytes:
    """The exact bytes the ed25519 signature is over: the state minus its signature."""
    return identity_prefix(stream, version, type_) + state[:_SIG_START] + state[_SIG_END:]


def seal(
    *,
    stream: str,
    version: int,
    type_: str,
    schema_version: int,
    timestamp_us: int,
    payload: bytes,
    signer: Signer,
) -> bytes:
    """Build the signed state blob for one event: a batch of one (``batch_parts``)."""
    parts = batch_parts(signer.key_id, timestamp_us)
    message, head, tail = parts(stream, version, type_, schema_version, payload)
    return b"".join((head, signer.sign(message), tail))


Parts = Callable[[str, int, str, int, bytes], tuple[bytes, bytes, bytes]]
"""(stream, version, type, schema_version, payload) -> (message to sign, head, tail):
the state is ``head ‖ signature ‖ tail``."""


def batch_parts(key_id: bytes, timestamp_us: int) -> Parts:
    """The unsigned parts of each event of a batch signed by one key at one time.

    Apart from signing, so a batch can build every message first and sign them all at
    once, possibly on two cores (``adapters/workers/parallel_signer.py``). What the
    events share (the header, the timestamp per schema version) is built once, and
    each event's call is positional (the batch append's loop, ``app/ledger/appending.py``).
    """
    head = _FORMAT_BYTE + key_id
    stamps: dict[int, bytes] = {}
    join, u64, lp, tag = b"".join, _U64.pack, _lp, EVENT_TAG

    def parts(
        stream: str, version: int, type_: str, schema_version: int, payload: bytes
    ) -> tuple[bytes, bytes, bytes]:
        stamp = stamps.get(schema_version)
        if stamp is None:
            stamp = stamps[schema_version] = _U16_I64.pack(schema_version, timestamp_us)
        tail = stamp + payload
        return join((tag, lp(stream), u64(version), lp(type_), head, tail)), head, tail

    return parts


def open_state(state: bytes) -> Envelope:
    """Split a state blob into its fields without checking anything."""
    if len(state) < HEADER_LEN or state[0] != FORMAT_V1:
        raise MalformedEnvelopeError(
            f"state of {len(state)} bytes is not a format-1 envelope"
            if len(state) >= 1
            else "empty state"
        )
    schema_version, timestamp_us = _U16_I64.unpack_from(state, _SIG_END)
    return Envelope(
        format=state[0],
        key_id=state[1:_SIG_START],
        signature=state[_SIG_START:_SIG_END],
        schema_version=schema_version,
        timestamp_us=timestamp_us,
        payload=state[HEADER_LEN:],
    )


def state_parts(state: bytes) -> tuple[int, int, bytes, bytes, bytes] | None:
    """``(schema_version, timestamp_us, key_id, signature, payload)`` of a state blob,
    or None when it is not a format-1 envelope; ``open_state`` without the object,
    for readers that open every event of a million."""
    if len(state) < HEADER_LEN or state[0] != FORMAT_V1:
        return None
    schema_version, timestamp_us = _U16_I64.unpack_from(state, _SIG_END)
    return (schema_version, timestamp_us, state[1:_SIG_START], state[_SIG_START:_SIG_END],
            state[HEADER_LEN:])  # fmt: skip


def chain_hash(
    prev_hash: bytes, seq: int, position: int, stream: str, version: int, type_: str, state: bytes
) -> bytes:
    """The hash of one log entry, linking it to the entry before it."""
    return _sha256(
        b"".join(
            (
                CHAIN_TAG,
                prev_hash,
                _U64_U64.pack(seq, position),
                _lp(stream),
                _U64.pack(version),
                _lp(type_),
                state,
            )
        )
    ).digest()


class ChainedRow(Protocol):
    """What ``chained_prefix`` reads of a stored record."""

    @property
    def position(self) -> int: ...
    @property
    def stream(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def state(self) -> bytes: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def prev_hash(self) -> bytes | None: ...
    @property
    def hash(self) -> bytes | None: ...


def chained_prefix(rows: Sequence[ChainedRow], start: int, seq: int, prev_hash: bytes) -> int:
    """The index of the first row from ``start`` that does not follow the entry
    (``seq``, ``prev_hash``) or whose stored bytes do not hash to its stored hash.

    The fast path of reading a verified log: one tight loop, no findings built.
    Callers re-check the row it stops at with ``kei.domain.log.verify`` to say what is
    wrong, so this only has to be exact about *whether* a row is good, which it is:
    the same bytes as ``chain_hash`` go into the same hash.
    """
    sha256, join, pack2, pack1, lp = hashlib.sha256, b"".join, _U64_U64.pack, _U64.pack, _lp
    i = start
    for i in range(start, len(rows)):
        r = rows[i]
        if type(r.seq) is not int or r.seq != seq + 1 or r.prev_hash != prev_hash:
            return i
        message = (CHAIN_TAG, prev_hash, pack2(r.seq, r.position), lp(r.stream),
                   pack1(r.version), lp(r.type), r.state)  # fmt: skip
        digest = sha256(join(message)).digest()
        if digest != r.hash:
            return i
        seq, prev_hash = r.seq, digest
    return len(rows)
