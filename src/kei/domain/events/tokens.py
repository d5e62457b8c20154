"""API tokens for ``kei serve``: who may read, write or administer the ledger over HTTP.

Each token is one stream, ``tokens/<token_id>``: ``token.created`` at version 1 and, when
it is withdrawn, ``token.revoked`` at version 2. The bearer text is
``kei_<token_id>_<secret>``; only the SHA-256 of the secret is signed into the log, so
the log tells who could write when without ever holding what lets them.
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.payload import Payload
from kei.domain.tokens.grant import Scope

TOKENS_STREAM_PREFIX: Final = "tokens/"
TOKEN_CREATED: Final = "token.created"
TOKEN_REVOKED: Final = "token.revoked"
TOKEN_EVENT_TYPES: Final = (TOKEN_CREATED, TOKEN_REVOKED)


def token_stream(token_id: str) -> str:
    return f"{TOKENS_STREAM_PREFIX}{token_id}"


class TokenCreated(Payload, frozen=True, kw_only=True):
    """A bearer token for ``kei serve``: ``token_id`` (16 lowercase hex, public),
    ``name`` (unique among active tokens), ``scope``, the key that signs what it writes
    (``key_id``, 16 hex; None: the server's own key), when it stops being valid
    (``expires_us``; None: never) and the lowercase hex SHA-256 of its secret."""

    token_id: str
    name: str
    scope: Scope
    key_id: str | None
    expires_us: int | None
    secret_sha256: str


class TokenRevoked(Payload, frozen=True, kw_only=True):
    """Token ``token_id`` grants nothing from this event on."""

    token_id: str
    reason: str
