"""What a valid bearer token grants, and the seam ``kei serve`` authenticates through.

A token is created and revoked by events (``kei tokens create|revoke``); only a hash of
its secret is ever stored. ``kei serve`` asks an :class:`Authenticator` about each
request's bearer token and gets a :class:`Grant` (who, which scope, which key signs
their writes, until when) or a :class:`Denied` with the reason (HTTP 401); a grant
whose scope is below what the route needs is HTTP 403 (:func:`allows`).
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

from msgspec import Struct

Scope = Literal["read", "write", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("read", "write", "admin")
_RANK: Final[dict[str, int]] = {"read": 1, "write": 2, "admin": 3}
DenyReason = Literal["malformed", "unknown", "revoked", "expired"]


class Grant(Struct, frozen=True, kw_only=True):
    """A token that is valid now: its public id and name, its scope, the key that signs
    what it writes (None: the server's own key), when it expires (None: never)."""

    token_id: str
    name: str
    scope: Scope
    key_id: str | None
    expires_us: int | None


class Denied(Struct, frozen=True, kw_only=True):
    """A bearer token that grants nothing, and why (for the 401's one-line detail)."""

    reason: DenyReason


def allows(grant: Grant, needed: Scope) -> bool:
    """Whether ``grant`` covers ``needed``: admin covers write, write covers read."""
    return _RANK[grant.scope] >= _RANK[needed]


class Authenticator(Protocol):
    """Turns a bearer token (the text after ``Bearer ``) into a grant, at ``now_us``."""

    def authenticate(self, bearer: str, now_us: int) -> Grant | Denied: ...
