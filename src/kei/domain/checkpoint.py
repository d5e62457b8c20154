"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note text format.

A checkpoint commits to the first ``size`` entries of the log by the chain hash of
entry ``size - 1`` (kei's log is a hash chain, so the third line is that head hash,
not an RFC 6962 Merkle root). The note is signed with ed25519 (signed-note type 0x01)
by a ledger key under the key name ``origin``; any C2SP signed-note verifier can check
the signature.

Text layout::

    <origin>\\n<size>\\n<base64 head hash>\\n
    \\n
    — <origin> <base64(4-byte note key id || 64-byte signature)>\\n

Parsing is strict and bounded: unknown signature lines are ignored (as the spec asks),
but a note with no line verifiable by a known key is rejected.

``check_checkpoint`` compares a parsed checkpoint with the log, in order: it names this
ledger, it carries a valid signature by one of the ledger's keys (else
checkpoint-invalid); the log holds at least ``size`` entries (else truncated); the
entry at sequence ``size - 1`` still has the checkpoint's head hash (else forked: the
history it covers was rewritten, or rolled back and appended to again).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from kei.domain.envelope import HASH_LEN
from kei.domain.keys import SigningKey, verify_signature
from kei.domain.verify import Finding, FindingKind

MAX_NOTE_BYTES: Final = 16 * 1024
MAX_SIGNATURES: Final = 16
_DASH: Final = "\u2014 "
_ED25519: Final = b"\x01"


class CheckpointFormatError(ValueError):
    """The text is not a well-formed kei checkpoint."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint; ``signatures`` are (key name, note key id, signature), unverified."""

    origin: str
    size: int
    head_hash: bytes
    body: str
    signatures: tuple[tuple[str, bytes, bytes], ...] = ()


def note_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of a signed-note ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4]


def body_text(origin: str, size: int, head_hash: bytes) -> str:
    if not origin or "\n" in origin:
        raise ValueError("origin must be one non-empty line")
    return f"{origin}\n{size}\n{base64.b64encode(head_hash).decode()}\n"


def sign_checkpoint(origin: str, size: int, head_hash: bytes, key: SigningKey) -> str:
    """The full signed note text."""
    body = body_text(origin, size, head_hash)
    sig = key.sign(body.encode())
    blob = base64.b64encode(note_key_id(origin, key.public_key) + sig).decode()
    return f"{body}\n{_DASH}{origin} {blob}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Split and validate the note's shape; signatures are not checked here."""
    if len(text.encode()) > MAX_NOTE_BYTES:
        raise CheckpointFormatError(f"checkpoint is larger than {MAX_NOTE_BYTES} bytes")
    body, sep, sig_block = text.partition("\n\n")
    if not sep or not sig_block.endswith("\n"):
        raise CheckpointFormatError("no blank line between the checkpoint and its signatures")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointFormatError("checkpoint body needs origin, size and hash lines")
    origin, size_text, hash_text = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointFormatError(f"size line {size_text!r} is not a decimal number")
    try:
        head_hash = base64.b64decode(hash_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointFormatError("hash line is not base64") from exc
    if len(head_hash) != HASH_LEN:
        raise CheckpointFormatError(f"hash has {len(head_hash)} bytes, expected {HASH_LEN}")
    return Checkpoint(origin, int(size_text), head_hash, body + "\n", _parse_signatures(sig_block))


def _parse_signatures(block: str) -> tuple[tuple[str, bytes, bytes], ...]:
    sigs: list[tuple[str, bytes, bytes]] = []
    for line in block.rstrip("\n").split("\n"):
        if not line.startswith(_DASH):
            raise CheckpointFormatError("signature line does not start with an em dash")
        parts = line[len(_DASH) :].split(" ")
        if len(parts) != 2:
            raise CheckpointFormatError("signature line needs a key name and a signature")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except binascii.Error as exc:
            raise CheckpointFormatError("signature is not base64") from exc
        if len(blob) == 4 + 64:
            sigs.append((parts[0], blob[:4], blob[4:]))
        if len(sigs) > MAX_SIGNATURES:
            raise CheckpointFormatError(f"more than {MAX_SIGNATURES} signatures")
    return tuple(sigs)


def signed_by(checkpoint: Checkpoint, public_keys: list[bytes]) -> bytes | None:
    """The first public key in ``public_keys`` with a valid signature on the note, if any."""
    message = checkpoint.body.encode()
    for name, note_id, sig in checkpoint.signatures:
        for public_key in public_keys:
            if note_key_id(name, public_key) == note_id and verify_signature(
                public_key, message, sig
            ):
                return public_key
    return None


def check_checkpoint(
    cp: Checkpoint,
    *,
    ledger_id: str | None,
    public_keys: list[bytes],
    chain_size: int,
    entry_at: Callable[[int], tuple[int, bytes] | None],
) -> list[Finding]:
    """Findings of the log against ``cp``; ``entry_at(seq)`` is (position, stored hash)."""
    if cp.origin != ledger_id:
        detail = f"checkpoint is for ledger {cp.origin}, not {ledger_id}"
        return [Finding(FindingKind.BAD_CHECKPOINT, None, detail)]
    if signed_by(cp, public_keys) is None:
        detail = "checkpoint has no valid signature by a key of this ledger"
        return [Finding(FindingKind.BAD_CHECKPOINT, None, detail)]
    if cp.size == 0:
        return []
    if chain_size < cp.size:
        detail = f"checkpoint covers {cp.size} events but the log holds {chain_size}"
        return [Finding(FindingKind.TRUNCATED, None, detail)]
    entry = entry_at(cp.size - 1)
    if entry is None or entry[1] != cp.head_hash:
        detail = f"entry {cp.size - 1} differs from the checkpoint's head: history was rewritten"
        return [Finding(FindingKind.FORKED, None if entry is None else entry[0], detail)]
    return []
