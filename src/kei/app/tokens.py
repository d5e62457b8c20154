"""API tokens for ``kei serve``: create, revoke and list them, and authenticate bearers.

A token is made here (``secrets``: a 16-hex id, 32 random bytes of secret), recorded as
``token.created`` on its own stream ``tokens/<token_id>`` with the SHA-256 of its
secret, and its bearer text ``kei_<token_id>_<secret>`` is handed back once: it is
stored nowhere. Every decision is taken from the token events as the log holds them,
each row checked (``app/token_log.py``).

Rules: a name may be held by one live (neither revoked nor expired) token at a time,
and cannot look like a token id (``revoke`` takes either); a token bound to a key
(``key_id``: what the server signs its writes with) needs a key the ledger holds as
active *and* a key file in ``KEI_HOME/keys`` with that id, since ``kei serve`` must be
able to sign with it; an expiry must lie in the future. Two processes creating the
same name at the same instant can both succeed (each token has its own stream);
``revoke NAME`` then asks for the token id.

:class:`LedgerAuthenticator` is the :class:`~kei.domain.tokens.grant.Authenticator`
``kei serve`` asks about each request: it refuses a malformed bearer without touching
the store, else catches up on the token events appended since its last answer (one
index probe when there are none; concurrent requests share one) and answers from the
fold.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

from msgspec import Struct

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.app.token_log import TokenLog
from kei.domain.events.tokens import TokenCreated, TokenRevoked, token_stream
from kei.domain.tokens.book import TokenEntry
from kei.domain.tokens.grant import Denied, Grant, Scope
from kei.domain.tokens.text import (
    ID_HEX,
    SECRET_BYTES,
    TOKEN_ID,
    digest_hex,
    format_token,
    parse_bearer,
)
from kei.errors import InputError

__all__ = ["LedgerAuthenticator", "Revoked", "TokenService"]


class Revoked(Struct, frozen=True):
    """The token ``revoke`` named, as it is now; ``appended``: False when it was
    revoked already (nothing appended)."""

    token: TokenEntry
    appended: bool


class TokenService:
    """Creates, revokes and lists the tokens of one ledger (its signing key writes)."""

    def __init__(self, ledger: Ledger, *, keys_dir: Path | None = None) -> None:
        self._ledger = ledger
        self._keys_dir = keys_dir
        self._log = TokenLog(ledger)

    def create(
        self,
        name: str,
        scope: Scope,
        key_id: str | None,
        expires_us: int | None,
        *,
        now_us: int | None = None,
    ) -> tuple[str, Grant]:
        """A new token: its bearer text (shown once, stored nowhere) and what it grants
        (``now_us``: the time the expiry and live names are judged at; default: now)."""
        now_us = _now_us() if now_us is None else now_us
        if TOKEN_ID.fullmatch(name):
            raise InputError(
                f"token name {name!r} looks like a token id",
                hint="pick a name that is not 16 hex digits",
            )
        if expires_us is not None and expires_us <= now_us:
            raise InputError("--expires is in the past", hint="give a later time, e.g. 30d")
        key = None if key_id is None else self._usable_key(key_id)
        self._log.catch_up()
        if self._log.book.live_named(name, now_us):
            raise InputError(
                f"a live token is named {name!r} already",
                hint="revoke it first (`kei tokens revoke NAME`) or pick another name",
            )
        token_id, secret = secrets.token_hex(ID_HEX // 2), secrets.token_bytes(SECRET_BYTES)
        created = TokenCreated(token_id=token_id, name=name, scope=scope, key_id=key,
                               expires_us=expires_us, secret_sha256=digest_hex(secret))  # fmt: skip
        self._ledger.append([NewEvent(token_stream(token_id), created, 0)])
        return format_token(token_id, secret), Grant(token_id=token_id, name=name, scope=scope, key_id=key,
                           expires_us=expires_us)  # fmt: skip

    def revoke(self, token_id_or_name: str, reason: str, *, now_us: int | None = None) -> Revoked:
        """Revoke the token with that id, else the one not yet revoked with that name."""
        now_us = _now_us() if now_us is None else now_us

        def write() -> Revoked:
            self._log.catch_up()
            entry = self._find(token_id_or_name, now_us)
            if entry.revoked_position is not None:
                return Revoked(entry, appended=False)
            payload = TokenRevoked(token_id=entry.token_id, reason=reason)
            self._ledger.append([NewEvent(token_stream(entry.token_id), payload, 1)])
            self._log.catch_up()
            return Revoked(self._log.book.get(entry.token_id) or entry, appended=True)

        return retry_write(self._ledger.retry, write, what=f"token {token_id_or_name!r}")

    def list(self) -> list[TokenEntry]:
        """Every token, oldest first (revoked and expired ones too)."""
        self._log.catch_up()
        return list(self._log.book)

    def _find(self, text: str, now_us: int) -> TokenEntry:
        book = self._log.book
        by_id = book.get(text) if TOKEN_ID.fullmatch(text) else None
        if by_id is not None:
            return by_id
        named = [e for e in book if e.name == text]
        unrevoked = [e for e in named if e.revoked_position is None]
        if len(unrevoked) > 1:
            ids = ", ".join(e.token_id for e in unrevoked)
            raise InputError(f"{len(unrevoked)} tokens are named {text!r} ({ids})",
                             hint="revoke each by its TOKEN_ID")  # fmt: skip
        if unrevoked or named:
            return (unrevoked or named)[-1]
        raise InputError(f"no token has the id or name {text!r}", hint="see `kei tokens list`")

    def _usable_key(self, wanted: str) -> str:
        """The key id ``wanted`` names (an id, or a key file's name), checked usable."""
        from kei.adapters.files.keyfile import list_key_files, load_key
        from kei.errors import KeyFileError

        files = list_key_files(self._keys_dir) if self._keys_dir is not None else []
        found: dict[str, str] = {}
        for path in files:
            try:
                key = load_key(path)
            except KeyFileError:
                continue  # another key's file; only the one named must load
            found[key.key_id_hex] = key.key_id_hex
            found.setdefault(path.stem, key.key_id_hex)
        key_id = found.get(wanted)
        if key_id is None:
            raise InputError(
                f"no usable key file for key {wanted!r} in {self._keys_dir}",
                hint="name a key `kei keys list` shows (its id or name); kei serve signs "
                "a token's writes with that key's file",
            )
        entry = self._ledger.keyring(refresh=True).keys.get(bytes.fromhex(key_id))
        if entry is None or entry.revoked_at is not None:
            state = "not registered in" if entry is None else "revoked in"
            raise InputError(f"key {key_id} is {state} this ledger",
                             hint="bind the token to an active key (`kei keys list`)")  # fmt: skip
        return key_id


def _now_us() -> int:
    return time.time_ns() // 1000


class LedgerAuthenticator:
    """``Authenticator`` over a ledger's token events, safe to share between threads.

    Concurrent requests share catch-ups: one that arrives while another thread is
    catching up waits for it and then catches up itself, unless a catch-up *began*
    after it arrived (that one read the log after the request came, so it saw every
    revoke made before). So a burst of requests costs about one store query per
    catch-up, not one each, and none is answered from a view older than its arrival.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._log = TokenLog(ledger)
        self._lock = threading.Lock()
        self._begun = 0  # catch-ups begun so far, numbered 1, 2, ... (each under the lock)
        self._done = 0  # the number of the last one that succeeded

    def authenticate(self, bearer: str, now_us: int) -> Grant | Denied:
        if parse_bearer(bearer) is None:  # garbage costs no query
            return Denied(reason="malformed")
        arrived = self._begun
        with self._lock:
            if self._done <= arrived:  # no catch-up begun since arrival has succeeded
                self._begun += 1
                ticket = self._begun
                self._log.catch_up()  # a StoreError leaves _done as it was
                self._done = ticket
            return self._log.book.authenticate(bearer, now_us)
