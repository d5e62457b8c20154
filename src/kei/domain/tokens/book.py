"""The state of every API token, folded from its events, and the answer to a bearer.

A :class:`TokenBook` holds one :class:`TokenEntry` per ``token.created`` and marks it
revoked at its ``token.revoked``; :func:`authenticate` answers a bearer text against
it. Pure: the events come in (with the position and time the log gave them), nothing
is read or written here (``kei.app.tokens`` reads them from the ledger).

Rules of the fold, each a property ``tests/tokens/test_book.py`` checks:

- A token is its ``token.created``; a second one with the same ``token_id`` changes
  nothing (ids are random: only a replay or a forger could repeat one).
- ``token.revoked`` marks a known token for ever; revoking it again, or revoking a
  token the book has not seen, changes nothing. So events of different tokens commute.
- A bearer is ``malformed`` (not ``kei_<16 hex>_<43 base64url>``), else ``unknown`` (no
  such token, or the secret's digest differs: a wrong secret learns nothing about the
  token id it names), else ``revoked``, else ``expired`` (``now_us >= expires_us``),
  else a :class:`~kei.domain.tokens.grant.Grant`. Digests are compared with
  ``hmac.compare_digest``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator

from msgspec import Struct, structs

from kei.domain.events.payload import Payload
from kei.domain.events.tokens import TokenCreated, TokenRevoked
from kei.domain.tokens.grant import Denied, Grant, Scope
from kei.domain.tokens.text import parse_bearer, secret_digest


class TokenEntry(Struct, frozen=True, kw_only=True):
    """One token as the log says it is now (never its secret; its digest only)."""

    token_id: str
    name: str
    scope: Scope
    key_id: str | None
    expires_us: int | None
    secret_sha256: bytes
    created_us: int
    created_position: int
    revoked_us: int | None = None
    revoked_position: int | None = None
    revoked_reason: str | None = None

    def grant(self) -> Grant:
        return Grant(token_id=self.token_id, name=self.name, scope=self.scope,
                     key_id=self.key_id, expires_us=self.expires_us)  # fmt: skip

    def is_live(self, now_us: int) -> bool:
        """Not revoked and not expired at ``now_us``."""
        return self.revoked_position is None and not self.is_expired(now_us)

    def is_expired(self, now_us: int) -> bool:
        return self.expires_us is not None and now_us >= self.expires_us


class TokenBook:
    """Every token seen so far, by id. ``apply`` is the fold's step."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, TokenEntry] = {}

    def apply(self, payload: Payload, position: int, recorded_us: int) -> None:
        """Fold one event (other types are ignored)."""
        if isinstance(payload, TokenCreated):
            if payload.token_id not in self._by_id:
                self._by_id[payload.token_id] = _entry(payload, position, recorded_us)
        elif isinstance(payload, TokenRevoked):
            known = self._by_id.get(payload.token_id)
            if known is not None and known.revoked_position is None:
                self._by_id[payload.token_id] = structs.replace(
                    known,
                    revoked_us=recorded_us,
                    revoked_position=position,
                    revoked_reason=payload.reason,
                )

    def get(self, token_id: str) -> TokenEntry | None:
        return self._by_id.get(token_id)

    def __iter__(self) -> Iterator[TokenEntry]:
        """Every token, oldest first."""
        return iter(sorted(self._by_id.values(), key=lambda e: e.created_position))

    def __len__(self) -> int:
        return len(self._by_id)

    def live_named(self, name: str, now_us: int) -> list[TokenEntry]:
        return [e for e in self if e.name == name and e.is_live(now_us)]

    def authenticate(self, bearer: str, now_us: int) -> Grant | Denied:
        """What ``bearer`` grants at ``now_us`` (the module docstring gives the order)."""
        parts = parse_bearer(bearer)
        if parts is None:
            return Denied(reason="malformed")
        entry = self._by_id.get(parts.token_id)
        if entry is None or not hmac.compare_digest(
            secret_digest(parts.secret), entry.secret_sha256
        ):
            return Denied(reason="unknown")
        if entry.revoked_position is not None:
            return Denied(reason="revoked")
        if entry.is_expired(now_us):
            return Denied(reason="expired")
        return entry.grant()


def fold(facts: Iterable[tuple[Payload, int, int]]) -> TokenBook:
    """A book from ``(payload, position, recorded_us)`` triples in log order."""
    book = TokenBook()
    for payload, position, recorded_us in facts:
        book.apply(payload, position, recorded_us)
    return book


def _entry(created: TokenCreated, position: int, recorded_us: int) -> TokenEntry:
    return TokenEntry(
        token_id=created.token_id, name=created.name, scope=created.scope,
        key_id=created.key_id, expires_us=created.expires_us,
        secret_sha256=_digest(created.secret_sha256),
        created_us=recorded_us, created_position=position,
    )  # fmt: skip


def _digest(hex_text: str) -> bytes:
    """The 32-byte digest a ``secret_sha256`` names; b"" (matching no secret) when it
    is not 64 hex digits, which only a broken writer could have signed."""
    try:
        digest = bytes.fromhex(hex_text)
    except ValueError:
        return b""
    return digest if len(digest) == 32 else b""
