"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note text format.

A checkpoint commits to the first ``size`` entries of the log. Since kei 0.x (this
change) its root line is the RFC 9162 Merkle tree root of those entries
(``kei.domain.log.merkle``) and the body carries the extension line ``TREE_EXTENSION``:
a true tlog-checkpoint that transparency-log tools, witnesses and proof verifiers can
use. Checkpoints written before carry no extension line and their root line is the
chain hash of entry ``size - 1`` (the "chain head" format); they are still read and
checked. The signature covers the whole body, extension line included, so nobody can
turn one format into the other. The note is signed with ed25519 (signed-note type
0x01) by a ledger key under the key name ``origin``; any C2SP signed-note verifier
can check the signature.

Text layout::

    <origin>\\n<size>\\n<base64 root hash>\\n[kei-root rfc9162\\n[kei-genesis sha256:<hex>\\n]]
    \\n
    — <origin> <base64(4-byte note key id || 64-byte signature)>\\n

Parsing is strict and bounded: unknown signature lines are ignored (as the spec asks),
but a note with no line verifiable by a known key is rejected.

``check_checkpoint`` compares a parsed checkpoint with the log, in order: it names this
ledger, it carries a valid signature by one of the ledger's keys (else
checkpoint-invalid); the log holds at least ``size`` entries (else truncated); the
tree root of the first ``size`` entries (chain-head format: the entry at sequence
``size - 1``) still equals the checkpoint's root line (else forked: the history it
covers was rewritten, or rolled back and appended to again).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Final

from msgspec import Struct

from kei.domain.log.envelope import HASH_LEN
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.keys import SigningKey, verify_signature
from kei.domain.log.notekeys import LOG_KEY
from kei.errors import CheckpointFormatError
from kei.limits import LIMITS

_DASH: Final = "\u2014 "
TREE_EXTENSION: Final = "kei-root rfc9162"
"""The extension line that marks a root line holding the Merkle tree root."""


class Checkpoint(Struct, frozen=True):
    """A parsed checkpoint; ``signatures`` are (key name, note key id, signature), unverified."""

    origin: str
    size: int
    root_hash: bytes
    body: str
    signatures: tuple[tuple[str, bytes, bytes], ...] = ()
    extensions: tuple[str, ...] = ()

    @property
    def is_tree(self) -> bool:
        """True when the root line is the Merkle tree root (else: the chain head)."""
        return TREE_EXTENSION in self.extensions

    @property
    def head_hash(self) -> bytes:
        """The root line under its pre-tree name (chain-head checkpoints, bundles)."""
        return self.root_hash


# The log's own signed-note keys (type 0x01, ``notekeys.py``), under their usual names.
note_key_id = LOG_KEY.key_id
vkey = LOG_KEY.vkey
parse_vkey = LOG_KEY.parse_vkey


def body_text(origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...] = ()) -> str:
    if not origin or "\n" in origin:
        raise ValueError("origin must be one non-empty line")
    extra = "".join(f"{line}\n" for line in extensions)
    return f"{origin}\n{size}\n{base64.b64encode(root_hash).decode()}\n{extra}"


def sign_tree_checkpoint(
    origin: str, size: int, tree_root: bytes, key: SigningKey, extra: tuple[str, ...] = ()
) -> str:
    """A checkpoint whose root line is the Merkle tree root of the first ``size`` entries;
    ``extra`` extension lines (e.g. ``kei-genesis``, ``kei.domain.log.identity``) follow
    ``kei-root rfc9162`` and are covered by the signature."""
    return _sign(body_text(origin, size, tree_root, (TREE_EXTENSION, *extra)), origin, key)


def sign_checkpoint(origin: str, size: int, head_hash: bytes, key: SigningKey) -> str:
    """A chain-head checkpoint (the format before Merkle roots; bundles still write it)."""
    return _sign(body_text(origin, size, head_hash), origin, key)


def _sign(body: str, origin: str, key: SigningKey) -> str:
    sig = key.sign(body.encode())
    blob = base64.b64encode(note_key_id(origin, key.public_key) + sig).decode()
    return f"{body}\n{_DASH}{origin} {blob}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Split and validate the note's shape; signatures are not checked here."""
    if len(text.encode()) > LIMITS.max_note_bytes:
        raise CheckpointFormatError(f"checkpoint is larger than {LIMITS.max_note_bytes} bytes")
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
    extensions = tuple(lines[3:])
    if len(extensions) > LIMITS.max_note_extensions or not all(extensions):
        raise CheckpointFormatError("checkpoint has empty or too many extension lines")
    return Checkpoint(
        origin, int(size_text), head_hash, body + "\n", _parse_signatures(sig_block), extensions
    )


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
        if len(sigs) > LIMITS.max_note_signatures:
            raise CheckpointFormatError(f"more than {LIMITS.max_note_signatures} signatures")
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
    tree_root_at: Callable[[int], bytes | None] | None = None,
    keys_at: Callable[[int], list[bytes]] | None = None,
) -> list[Finding]:
    """Findings of the log against ``cp``; ``entry_at(seq)`` is (position, stored hash),
    ``tree_root_at(size)`` the Merkle root of the first ``size`` entries (None: unknown),
    ``keys_at(position)`` the public keys valid at a position (None: not checked)."""
    if cp.origin != ledger_id:
        detail = f"checkpoint is for ledger {cp.origin}, not {ledger_id}"
        return [Finding(FindingKind.BAD_CHECKPOINT, None, detail)]
    if signed_by(cp, public_keys) is None:
        detail = "checkpoint has no valid signature by a key of this ledger"
        return [Finding(FindingKind.BAD_CHECKPOINT, None, detail)]
    if cp.size == 0:
        return []
    if keys_at is not None and chain_size >= cp.size:
        found = _check_signer_at_size(cp, entry_at, keys_at)
        if found:
            return found
    if chain_size < cp.size:
        detail = f"checkpoint covers {cp.size} events but the log holds {chain_size}"
        return [Finding(FindingKind.TRUNCATED, None, detail)]
    if cp.is_tree:
        tree_root = None if tree_root_at is None else tree_root_at(cp.size)
        if tree_root is None:
            detail = "the tree root at the checkpoint's size could not be computed here"
            return [Finding(FindingKind.BAD_CHECKPOINT, None, detail)]
        if tree_root != cp.root_hash:
            detail = (
                f"the tree root of the first {cp.size} entries differs from the checkpoint's: "
                "history was rewritten"
            )
            return [Finding(FindingKind.FORKED, None, detail)]
        return []
    entry = entry_at(cp.size - 1)
    if entry is None or entry[1] != cp.head_hash:
        detail = f"entry {cp.size - 1} differs from the checkpoint's head: history was rewritten"
        return [Finding(FindingKind.FORKED, None if entry is None else entry[0], detail)]
    return []


def _check_signer_at_size(
    cp: Checkpoint,
    entry_at: Callable[[int], tuple[int, bytes] | None],
    keys_at: Callable[[int], list[bytes]],
) -> list[Finding]:
    """Fail closed: a checkpoint must be signed by a key valid at its last entry, so a
    key unknown there (added later) or revoked before it vouches for nothing."""
    entry = entry_at(cp.size - 1)
    if entry is None or signed_by(cp, keys_at(entry[0])) is not None:
        return []
    detail = (
        f"checkpoint is signed only by keys not valid at its size {cp.size} "
        f"(position {entry[0]}): unknown there or revoked before it"
    )
    return [Finding(FindingKind.BAD_CHECKPOINT, None, detail)]
