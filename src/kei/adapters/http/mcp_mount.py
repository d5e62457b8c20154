"""``/mcp``: the tools of ``kei mcp serve`` over MCP's streamable HTTP transport.

The SDK's own streamable-HTTP app serves the protocol, over the same tools, resources
and prompts as the stdio server (``adapters/mcp/server.build``), whose calls append
through the server's ``GroupLedger``. The bearer token identifies the client: it is
checked here before the SDK sees the request (401/403 as every route), a read token
reaches a read-only server (changing tools answer ``isError``), and a write token's
calls are signed by the key bound to it, each call recorded as ``mcp.tool.called``
in the batch of what it changed. The SDK's DNS-rebinding check (a defence for servers
without authentication) is off: every request needs a token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from kei.adapters.http.guard import Guard
from kei.adapters.http.problems import ApiError

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context
    from starlette.types import ASGIApp

    from kei.adapters.http.backend import Backend
    from kei.domain.log.keys import SigningKey

_GRANT = "kei.grant"


class McpEndpoint:
    """An ASGI app for ``/mcp``: the token, then the SDK's app for its scope (set once
    the server runs, by :func:`serving`)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.apps: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            grant = await self.guard.grant(request, "read")
            if not self.apps:
                raise ApiError(503, "starting", "the server is still starting; retry in a moment")
        except ApiError as exc:
            await exc.response()(scope, receive, send)
            return
        scope[_GRANT] = grant
        app = self.apps["write" if grant.scope in ("write", "admin") else "read"]
        await app(scope, receive, send)


@asynccontextmanager
async def serving(endpoint: McpEndpoint, backend: Backend) -> AsyncIterator[None]:
    """Build the two MCP servers (changing, read-only) over the backend's ledger and
    run their session managers while the app runs."""
    from mcp.server.transport_security import TransportSecuritySettings

    from kei.adapters.mcp.calls import Calls
    from kei.adapters.mcp.server import build
    from kei.app.services import Services

    store = backend.store
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    async with AsyncExitStack() as stack:
        for scope, read_only in (("write", False), ("read", True)):
            calls = Calls(backend.writer, read_only=read_only, signer=_signer(backend))
            stack.callback(calls.close)
            services = Services(backend.writer, store.catalog, seal_key=store.seal_key)
            stack.callback(services.close)
            server = build(backend.writer, store.catalog, calls, services)
            endpoint.apps[scope] = server.streamable_http_app(
                streamable_http_path="/mcp", transport_security=security
            )
            await stack.enter_async_context(server.session_manager.run())
        try:
            yield
        finally:
            endpoint.apps.clear()


def _signer(backend: Backend) -> Any:
    def key_of(ctx: Context) -> SigningKey | None:
        request = ctx.request_context.request
        grant = None if request is None else getattr(request, "scope", {}).get(_GRANT)
        if grant is None or grant.key_id is None:
            return None
        return backend.key(grant.key_id)

    return key_of
