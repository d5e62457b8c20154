"""``build_app``: kei's HTTP API as a Starlette app, its collaborators passed in.

Why Starlette rather than Litestar: msgspec already encodes and decodes every body
(Litestar's main draw is doing that for you); Starlette is small, already installed
with the MCP SDK kei ships (``kei[mcp]``), and mounts the SDK's streamable-HTTP app
as it is. The routes are a table (``_reads``, ``writes.write_routes``), from which
the OpenAPI document is made too.

Every route but ``/v1/health`` and ``/openapi.json`` checks its token first
(``guard.py``); every error is a problem document (``problems.py``), whatever raised it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kei.adapters.http import events, reads
from kei.adapters.http.answers import answer
from kei.adapters.http.backend import Backend, Store
from kei.adapters.http.guard import Guard, RateLimit
from kei.adapters.http.openapi import TOKEN, Health, Read, VerifyStatus, document
from kei.adapters.http.problems import TITLES, ApiError, from_kei_error, internal
from kei.adapters.http.writes import handler, write_routes
from kei.app.json_form import rfc3339
from kei.domain.tokens.grant import Authenticator, Scope
from kei.errors import KeiError

Handler = Callable[[Request, Backend], Awaitable[Response]]
MAX_BODY: Final = 1 << 20
_TIME: Final = ("since", "until")

_READS: Final[tuple[tuple[Read, Handler], ...]] = (
    (Read("/v1/health", None, "Liveness and version.", Health), reads.health),
    (Read("/v1/events", "read", "The log after a position, as NDJSON.",
          media="application/x-ndjson", query=("after", "limit")), events.ndjson),
    (Read("/v1/events/stream", "read", "The log live, as Server-Sent Events.",
          media="text/event-stream", query=("after",)), events.sse),
    (Read("/v1/agents", "read", "Every agent with its status and cost."), reads.agents),
    (Read("/v1/costs", "read", "`kei cost report --json`.", query=("by", *_TIME)), reads.costs),
    (Read("/v1/costs/series", "read", "Cost per day, split by model or agent.",
          query=("bucket", "split", *_TIME)), reads.cost_series),
    (Read("/v1/budgets", "read", "`kei budget status --json`."), reads.budgets),
    (Read("/v1/posteriors", "read", "`kei posterior show --json`."), reads.posteriors),
    (Read("/v1/verify", "read", "The log's verification, extended to the head.", VerifyStatus),
     reads.verify),
    (Read("/v1/checkpoint", "read", "A signed C2SP checkpoint of the log.",
          media="text/plain"), reads.checkpoint),
    (Read("/v1/proofs/inclusion", "read", "`kei prove inclusion --json`: one event's audit path.",
          query=("position",)), reads.inclusion),
    (Read("/v1/proofs/consistency", "read",
          "The log now extends its first `first` entries (RFC 9162 consistency proof).",
          query=("first",)), reads.consistency),
)  # fmt: skip


def now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def build_app(
    store: Store,
    authenticator: Authenticator,
    *,
    clock_us: Callable[[], int] = now_us,
    max_body: int = MAX_BODY,
    rate: RateLimit | None = None,
    extra_routes: list[BaseRoute] | None = None,
    mcp: bool = False,
) -> Starlette:
    """The app: ``store`` says where the log is and how to sign; ``authenticator`` turns
    bearer tokens into grants; ``mcp`` serves the MCP tools at ``/mcp`` (needs the MCP
    SDK: ``mcp_mount.py``); ``extra_routes`` (the dashboard) are added as they are. The
    ledgers open when the app starts and close when it stops."""
    guard = Guard(authenticator, rate=rate or RateLimit(), max_body=max_body, now_us=clock_us)
    opened: list[Backend] = []

    def backend() -> Backend:
        if not opened:
            raise ApiError(503, "starting", "the server is still starting; retry in a moment")
        return opened[0]

    mcp_endpoint = _mcp_endpoint(guard) if mcp else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened.append(Backend(store, clock_us))
        try:
            if mcp_endpoint is None:
                yield
            else:
                from kei.adapters.http.mcp_mount import serving

                async with serving(mcp_endpoint, opened[0]):
                    yield
        finally:
            opened.pop().close()

    writes = write_routes()
    from kei import __version__

    documented = [r for r, _ in _READS] + [TOKEN]
    openapi = msgspec.json.encode(document(documented, writes, __version__))

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def token(request: Request) -> Response:
        grant = await guard.grant(request, "read")
        return answer({"token_id": grant.token_id, "name": grant.name, "scope": grant.scope,
                       "key_id": grant.key_id, "expires_at": rfc3339(grant.expires_us)})  # fmt: skip

    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/v1/token", token, methods=["GET"]),
    ]
    routes += [Route(r.path, _guarded(h, r.scope, guard, backend), methods=["GET"])
               for r, h in _READS]  # fmt: skip
    routes += [Route(w.path, handler(w, guard, backend), methods=["POST"]) for w in writes]
    if mcp_endpoint is not None:
        routes.append(Route("/mcp", mcp_endpoint))
    routes += extra_routes or []
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=_HANDLERS)


def _mcp_endpoint(guard: Guard) -> Any:
    from kei.adapters.http.mcp_mount import McpEndpoint

    return McpEndpoint(guard)


def _guarded(
    h: Handler, scope: str | None, guard: Guard, backend: Callable[[], Backend]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if scope is not None:
            await guard.grant(request, _scope(scope))
        return await h(request, backend())

    return endpoint


def _scope(text: str) -> Scope:
    return "admin" if text == "admin" else "write" if text == "write" else "read"


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _kei_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeiError)
    return from_kei_error(exc).response()


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = TITLES.get(exc.status_code, "error").lower().replace(" ", "-")
    detail = {
        404: f"no route {request.url.path}; see /openapi.json for the API",
        405: f"{request.method} is not allowed on {request.url.path}; see /openapi.json",
    }.get(exc.status_code, str(exc.detail))
    return ApiError(exc.status_code, slug, detail, dict(exc.headers or {})).response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    return internal(exc).response()


_HANDLERS: Final[dict[Any, Any]] = {
    ApiError: _problem,
    KeiError: _kei_error,
    HTTPException: _http,
    Exception: _unexpected,
}
