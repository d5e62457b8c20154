"""The bearer text of an API token, ``kei_<token_id>_<secret>``, and the digest kept of it.

``token_id`` is 16 lowercase hex digits (public: it names the token's stream and is
how ``kei tokens revoke`` and the log refer to it); ``secret`` is 32 random bytes in
base64url without padding (43 characters). Only ``sha256(secret)`` is stored, so a
copy of the log or the database grants nothing. The shape is fixed, so a pasted token
is recognised by the shipped leak matrix (rule ``kei-api-token``) and refused before it
could be signed into the log. Making a token needs randomness and is the app's job
(``kei.app.tokens``); this module only formats, parses and hashes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from msgspec import Struct

PREFIX: Final = "kei_"
ID_HEX: Final = 16
SECRET_BYTES: Final = 32
SECRET_CHARS: Final = 43  # base64url of 32 bytes, without its one "=" of padding
TOKEN_CHARS: Final = len(PREFIX) + ID_HEX + 1 + SECRET_CHARS
_SHAPE: Final = re.compile(rf"kei_([0-9a-f]{{{ID_HEX}}})_([A-Za-z0-9_-]{{{SECRET_CHARS}}})")
TOKEN_ID: Final = re.compile(rf"[0-9a-f]{{{ID_HEX}}}")


class Bearer(Struct, frozen=True):
    """A bearer text split into its parts (its shape checked, nothing else)."""

    token_id: str
    secret: str


def format_token(token_id: str, secret: bytes) -> str:
    """The bearer text of ``token_id`` with the raw ``secret`` bytes."""
    return f"{PREFIX}{token_id}_{encode_secret(secret)}"


def encode_secret(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def parse_bearer(text: str) -> Bearer | None:
    """``text``'s token id and secret, or None when it is not a kei token's shape (the
    length is checked first, so a hostile megabyte costs nothing). A secret whose last
    character carries bits 32 bytes cannot hold is refused: one token, one spelling."""
    if len(text) != TOKEN_CHARS:
        return None
    found = _SHAPE.fullmatch(text)
    if found is None or found.group(2)[-1] not in _LAST_CHARS:
        return None
    return Bearer(found.group(1), found.group(2))


# 32 bytes are 256 bits; 43 base64 characters hold 258, so the last character's two low
# bits are zero: only the characters whose index is a multiple of 4 can end a secret.
_LAST_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[::4]
)


def secret_digest(secret: str) -> bytes:
    """SHA-256 of the secret's 32 bytes, from its text in a token (as ``parse_bearer``
    checked it: 43 base64url characters)."""
    return hashlib.sha256(base64.urlsafe_b64decode(secret + "=")).digest()


def digest_hex(secret: bytes) -> str:
    """What ``token.created`` records of a new token's secret: its SHA-256, hex."""
    return hashlib.sha256(secret).hexdigest()
