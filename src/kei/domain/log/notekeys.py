"""The two kinds of C2SP signed-note key kei uses, as one table.

A log signs its checkpoints with ed25519 keys of signature type 0x01
(``checkpoint.py``); a witness cosigns them with type 0x04 (tlog-cosignature,
``cosignature.py``), so the same key can never be taken for the other. The key id,
the verifier key ``<name>+<hex key id>+<base64(type ‖ public key)>`` and its parsing
differ only in that type byte and in how messages name the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Final

from msgspec import Struct

__all__ = ["LOG_KEY", "WITNESS_KEY", "NoteKeyType"]


class NoteKeyType(Struct, frozen=True):
    """One signed-note signature type: its byte and the words its errors use."""

    type_byte: bytes
    what: str
    """How messages name a verifier key of this type."""
    wrong_type: str
    """The message for a verifier key of another type or length."""

    def key_id(self, name: str, public_key: bytes) -> bytes:
        """The 4-byte key id: ``SHA-256(name ‖ "\\n" ‖ type ‖ public key)[:4]``, the bytes
        that open this key's signature lines in a note."""
        return hashlib.sha256(name.encode() + b"\n" + self.type_byte + public_key).digest()[:4]

    def vkey(self, name: str, public_key: bytes) -> str:
        """The verifier key ``<name>+<hex key id>+<base64(type ‖ public key)>``."""
        data = base64.b64encode(self.type_byte + public_key).decode()
        return f"{name}+{self.key_id(name, public_key).hex()}+{data}"

    def parse_vkey(self, text: str) -> tuple[str, bytes]:
        """(name, public key) of a verifier key of this type; ValueError naming what is
        wrong."""
        what = self.what
        parts = text.strip().split("+", 2)  # base64 may hold '+', names and ids never do
        if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
            article = "an" if what[0] in "aeiou" else "a"
            raise ValueError(f"{article} {what} reads <name>+<8 hex digits>+<base64 key>")
        name, id_hex, data = parts
        try:
            raw = base64.b64decode(data, validate=True)
            key_id = bytes.fromhex(id_hex)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"the {what}'s id or key is not hex / base64") from exc
        if len(raw) != 33 or raw[:1] != self.type_byte:
            raise ValueError(self.wrong_type)
        if self.key_id(name, raw[1:]) != key_id:
            raise ValueError(f"the {what}'s id does not match its name and key")
        return name, raw[1:]


LOG_KEY: Final = NoteKeyType(
    b"\x01", "verifier key", "the verifier key is not an ed25519 key (type 0x01, 32 bytes)"
)
WITNESS_KEY: Final = NoteKeyType(
    b"\x04", "witness verifier key", "not a witness key (type 0x04, 32-byte Ed25519 key)"
)
