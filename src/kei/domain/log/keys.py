"""ed25519 keys as kei uses them: ids derived from public keys, signing, verifying.

A key id is the first 8 bytes of SHA-256 over a tag and the raw public key, shown
as 16 lowercase hex characters. The private side never leaves this object; the
``repr`` shows only the id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.signing
from msgspec import Struct

from kei.domain.log.envelope import KEY_ID_LEN

KEY_TAG: Final = b"kei/key/v1\x00"


def key_id_for(public_key: bytes) -> bytes:
    """The stable 8-byte id of an ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError(f"an ed25519 public key has 32 bytes, got {len(public_key)}")
    return hashlib.sha256(KEY_TAG + public_key).digest()[:KEY_ID_LEN]


class SigningKey:
    """An ed25519 private key with its id; satisfies ``envelope.Signer``."""

    __slots__ = ("_key", "_key_id", "_secret", "name", "public_key")

    def __init__(self, seed: bytes, *, name: str = "") -> None:
        if len(seed) != 32:
            raise ValueError(f"an ed25519 seed has 32 bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self._secret: bytes = nacl.bindings.crypto_sign_seed_keypair(seed)[1]
        self.public_key: bytes = bytes(self._key.verify_key)
        self._key_id = key_id_for(self.public_key)
        self.name = name

    @classmethod
    def generate(cls, *, name: str = "") -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()), name=name)

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def key_id_hex(self) -> str:
        return self._key_id.hex()

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        # The raw binding skips PyNaCl's SignedMessage wrapper: ~1 µs per appended event.
        signed: bytes = nacl.bindings.crypto_sign(message, self._secret)
        return signed[:64]

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        secret, sign = self._secret, nacl.bindings.crypto_sign
        return [sign(m, secret)[:64] for m in messages]

    def __repr__(self) -> str:
        return f"SigningKey(id={self.key_id_hex}, name={self.name!r})"


class PublicKey(Struct, frozen=True):
    """A verifying key as registered in the log."""

    key_id: bytes
    public_key: bytes

    @classmethod
    def from_bytes(cls, public_key: bytes) -> PublicKey:
        return cls(key_id_for(public_key), public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid ed25519 signature of ``message``."""
        try:
            nacl.signing.VerifyKey(self.public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Plain ed25519 check that never raises."""
    return PublicKey(key_id_for(public_key), public_key).verify(message, signature)
