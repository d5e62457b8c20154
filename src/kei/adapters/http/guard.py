"""Who may ask what: the bearer token, the route's scope, the rate limit, the body size.

Every route but ``/v1/health`` and ``/openapi.json`` names the scope it needs. The
token goes to the :class:`~kei.domain.tokens.grant.Authenticator` (on a few threads of
its own: it may read the ledger, so it must be safe to share between threads, as
``LedgerAuthenticator`` is): no grant is 401, a grant below the scope is 403, and either is
answered before anything else runs, so a refused request appends nothing. Each grant
then spends one token of its bucket (``RateLimit``): an empty bucket is 429 with
``Retry-After``. A body longer than ``max_body`` bytes is 413, counted as it arrives
(a ``Content-Length`` above the limit is refused before reading).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from msgspec import Struct
from starlette.requests import Request

from kei.adapters.http.problems import ApiError
from kei.domain.tokens.grant import Authenticator, Denied, Grant, Scope, allows

_WHY: Final = {
    "missing": "no bearer token: send `Authorization: Bearer <token>`",
    "malformed": "the bearer token is malformed",
    "unknown": "the bearer token is unknown to this ledger",
    "revoked": "the bearer token was revoked",
    "expired": "the bearer token has expired",
}
_MAKE: Final = "; make one with `kei tokens create NAME --scope read|write|admin`"
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="kei"'}


class RateLimit(Struct, frozen=True):
    """Each token's bucket: ``rate`` requests a second on average, ``burst`` at once
    (rate 0: no limit)."""

    rate: float = 200.0
    burst: int = 400


class _Buckets:
    """Token buckets per token id (the state is this server's, not the log's)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.clock = limit, clock
        self._state: dict[str, tuple[float, float]] = {}  # token id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """Spend one request of ``who``'s bucket: 0.0, or the seconds until one is due."""
        rate, burst = self.limit.rate, float(self.limit.burst)
        if rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, at = self._state.get(who, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens < 1.0:
                self._state[who] = (tokens, now)
                return (1.0 - tokens) / rate
            self._state[who] = (tokens - 1.0, now)
            return 0.0


class Guard:
    """Authenticates requests, checks scopes and rates, reads bodies within the limit."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        rate: RateLimit,
        max_body: int,
        now_us: Callable[[], int],
    ) -> None:
        self.authenticator, self.max_body, self.now_us = authenticator, max_body, now_us
        self._buckets = _Buckets(rate)
        self._threads = ThreadPoolExecutor(4, thread_name_prefix="kei-serve-auth")

    def _authenticate(self, bearer: str) -> Grant | Denied:
        return self.authenticator.authenticate(bearer, self.now_us())

    async def grant(self, request: Request, needed: Scope) -> Grant:
        """The request's grant, if it covers ``needed``; else a 401/403/429 problem."""
        bearer = _bearer(request.headers.get("authorization"))
        if bearer is None:
            raise ApiError(401, "unauthorized", _WHY["missing"] + _MAKE, _CHALLENGE)
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(self._threads, self._authenticate, bearer)
        if isinstance(got, Denied):
            raise ApiError(401, "unauthorized", _WHY[got.reason] + _MAKE, _CHALLENGE)
        if not allows(got, needed):
            raise ApiError(
                403, "forbidden",
                f"token {got.name!r} has scope {got.scope}; this needs {needed} "
                f"(make one with `kei tokens create NAME --scope {needed}`)",
            )  # fmt: skip
        wait = self._buckets.take(got.token_id)
        if wait > 0:
            raise ApiError(
                429, "rate-limited",
                f"token {got.name!r} sent more than its rate allows; retry in {wait:.2f} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )  # fmt: skip
        return got

    async def body(self, request: Request) -> bytes:
        """The request body, refused (413) once it passes ``max_body`` bytes."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return ApiError(
            413, "too-large",
            f"the request body is over {self.max_body} bytes; send less (the server's --max-body)",
        )  # fmt: skip


def _bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; "" for another scheme
    (malformed), None when there is no header."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()
