"""Witness cosignatures in the C2SP tlog-cosignature format (cosignature/v1, Ed25519).

A witness that has checked a checkpoint appends one more signed-note line to it::

    — <witness name> base64(key id || timestamp || signature)

- key id: ``SHA-256(<name> || "\\n" || 0x04 || 32-byte public key)[:4]`` (type 0x04, not
  the 0x01 of a log signature, so the same key can never be mistaken for the other);
- timestamp: 8 bytes, big-endian, seconds since the Unix epoch (at most 2^63 - 1);
- signature: Ed25519 over ``"cosignature/v1\\n" || "time <timestamp>\\n" || body``, where
  body is the whole checkpoint note body (origin, size, root and extension lines, each
  ending in a newline), without the blank line and without any signature line.

A cosignature says "as of this time, the largest consistent tree I have seen for this
origin has this root". Its verifier key is ``<name>+<hex key id>+base64(0x04 || key)``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from kei.domain.log.keys import SigningKey, verify_signature
from kei.domain.log.notekeys import WITNESS_KEY

HEADER: Final = "cosignature/v1"
MAX_TIMESTAMP: Final = 2**63 - 1
_DASH: Final = "\u2014 "
_BLOB_LEN: Final = 4 + 8 + 64


# Witness cosigning keys (type 0x04, ``notekeys.py``), under their usual names.
cosigner_key_id = WITNESS_KEY.key_id
witness_vkey = WITNESS_KEY.vkey
parse_witness_vkey = WITNESS_KEY.parse_vkey


def check_name(name: str) -> None:
    """A key name is one non-empty token: no whitespace, no '+'."""
    if not name or any(c.isspace() or c == "+" for c in name):
        raise ValueError("a witness name must be non-empty, without spaces or '+'")


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The exact bytes an Ed25519 cosignature/v1 signs."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("timestamp out of range")
    if not body.endswith("\n"):
        raise ValueError("a checkpoint body ends with a newline")
    return f"{HEADER}\ntime {timestamp}\n{body}".encode()


def cosignature_line(body: str, name: str, key: SigningKey, timestamp: int) -> str:
    """One signature line (ending in a newline) cosigning the checkpoint ``body``."""
    check_name(name)
    sig = key.sign(cosigned_message(body, timestamp))
    blob = cosigner_key_id(name, key.public_key) + timestamp.to_bytes(8, "big") + sig
    return f"{_DASH}{name} {base64.b64encode(blob).decode()}\n"


def signature_lines(note: str) -> list[tuple[str, bytes]]:
    """(key name, decoded blob) of every well-formed signature line of a note."""
    _, sep, block = note.partition("\n\n")
    found: list[tuple[str, bytes]] = []
    for line in block.split("\n") if sep else []:
        if not line.startswith(_DASH):
            continue
        parts = line[len(_DASH) :].split(" ")
        if len(parts) != 2:
            continue
        try:
            found.append((parts[0], base64.b64decode(parts[1], validate=True)))
        except binascii.Error:
            continue
    return found


def cosigned_by(note: str, body: str, name: str, public_key: bytes) -> int | None:
    """The timestamp of a valid cosignature of ``body`` by the witness, or None."""
    key_id = cosigner_key_id(name, public_key)
    for line_name, blob in signature_lines(note):
        if line_name != name or len(blob) != _BLOB_LEN or blob[:4] != key_id:
            continue
        timestamp = int.from_bytes(blob[4:12], "big")
        if timestamp > MAX_TIMESTAMP:
            continue
        if verify_signature(public_key, cosigned_message(body, timestamp), blob[12:]):
            return timestamp
    return None


def count_cosigners(note: str, body: str, witnesses: list[tuple[str, bytes]]) -> int:
    """How many distinct witnesses in ``witnesses`` validly cosigned ``body``."""
    unique = {(name, key) for name, key in witnesses}
    return sum(1 for name, key in unique if cosigned_by(note, body, name, key) is not None)
