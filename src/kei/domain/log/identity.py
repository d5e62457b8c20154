"""Which ledger this is: its id and the fingerprint of its genesis key.

A log can be rewritten wholesale by someone holding no key of the ledger: a new
genesis with a freshly generated key, every event re-signed. Every signature and hash
then verifies, so the log alone cannot tell. What it cannot forge is a value kept
outside the store: the ledger id and the genesis key fingerprint, pinned in
``KEI_HOME`` by ``kei init`` (``kei.adapters.files.pins``), written into every checkpoint
(``GENESIS_EXTENSION``) and given by an auditor with ``--expect-ledger`` /
``--expect-key``.

The genesis key fingerprint is ``sha256:`` followed by the 64 lowercase hex digits of
SHA-256 over the 32-byte ed25519 public key, nothing else hashed with it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from kei.domain.log.checkpoint import parse_vkey
from kei.domain.log.keys import key_id_for

GENESIS_EXTENSION: Final = "kei-genesis"
"""Checkpoint extension line ``kei-genesis <fingerprint>``, covered by the signature."""
_FINGERPRINT: Final = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
_HEX16: Final = re.compile(r"[0-9a-fA-F]{16}")


def fingerprint(public_key: bytes) -> str:
    """The genesis key fingerprint (see the module docstring)."""
    if len(public_key) != 32:
        raise ValueError(f"an ed25519 public key has 32 bytes, got {len(public_key)}")
    return "sha256:" + hashlib.sha256(public_key).hexdigest()


def is_fingerprint(text: str) -> bool:
    return _FINGERPRINT.fullmatch(text) is not None


def genesis_line(public_key: bytes) -> str:
    """The checkpoint extension line naming the genesis key."""
    return f"{GENESIS_EXTENSION} {fingerprint(public_key)}"


def genesis_of(extensions: tuple[str, ...]) -> str | None:
    """The fingerprint a checkpoint's ``kei-genesis`` line names (None: no such line,
    as in checkpoints written before it existed); a malformed line is a ValueError."""
    found = [e for e in extensions if e.split(" ", 1)[0] == GENESIS_EXTENSION]
    if not found:
        return None
    if len(found) > 1:
        raise ValueError("the checkpoint has more than one kei-genesis line")
    value = found[0][len(GENESIS_EXTENSION) + 1 :]
    if not is_fingerprint(value):
        raise ValueError("the checkpoint's kei-genesis line is not 'kei-genesis sha256:<64 hex>'")
    return value


def key_matcher(spec: str) -> str:
    """Normalise an ``--expect-key`` value into a form ``key_matches`` compares.

    Accepted: a C2SP verifier key (``kei keys export --vkey``), a fingerprint
    (``sha256:<64 hex>``), a 64-hex-digit public key, or a 16-hex-digit kei key id.
    """
    text = spec.strip()
    if "+" in text:
        return "pk:" + parse_vkey(text)[1].hex()
    if is_fingerprint(text.lower()):
        return "fp:" + text.lower()
    if _HEX64.fullmatch(text):
        return "pk:" + text.lower()
    if _HEX16.fullmatch(text):
        return "id:" + text.lower()
    raise ValueError(
        "expected a verifier key (name+id+key), a fingerprint (sha256:<64 hex>), "
        "a 64-hex public key or a 16-hex key id"
    )


def key_matches(matcher: str, public_key: bytes) -> bool:
    """Does the genesis ``public_key`` match a ``key_matcher`` result?"""
    kind, _, value = matcher.partition(":")
    if kind == "pk":
        return public_key.hex() == value
    if kind == "fp":
        return fingerprint(public_key) == value
    return key_id_for(public_key).hex() == value
