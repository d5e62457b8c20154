"""Build kei's MCP server over one ledger and serve it on stdio until the client leaves.

The SDK's ``MCPServer`` speaks the protocol (every handshake revision it knows, ``ping``,
notifications without replies, tool failures as ``isError`` results); kei adds its
tools (``tools.py`` changes, ``reads.py`` reads), resources and prompts (``views.py``).
The caller (``kei mcp serve``) opens the ledger with the server's key and passes the
read models' seal key and the model catalog, as it does for every command.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import anyio
from mcp.server.mcpserver import MCPServer

from kei.adapters.mcp.calls import Calls
from kei.adapters.mcp.reads import register_reads
from kei.adapters.mcp.tools import register_writes
from kei.adapters.mcp.views import register_views
from kei.adapters.mcp.watch import Watch
from kei.app.services import Services

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.domain.catalog.catalog import Catalog

NAME = "kei"
INSTRUCTIONS = (
    "kei is a signed, hash-chained event log of agent work. Tools that change it "
    "(agent_*, cost_record, memory_write, route_select, route_outcome, skill_record) "
    "append signed events and a record of the call; read tools answer with the log "
    "position they were computed at."
)


def build(ledger: Ledger, catalog: Catalog, calls: Calls, services: Services) -> MCPServer:
    """The server with every tool, resource and prompt, not yet serving."""
    from kei import __version__

    server: MCPServer = MCPServer(
        NAME, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    changing = register_writes(server, calls, services)
    server.middleware.append(Watch(calls, changing))
    register_reads(server, calls, services)
    register_views(server, calls, services)
    return server


def serve(
    ledger: Ledger, catalog: Catalog, *, seal_key: bytes | None, read_only: bool = False
) -> None:
    """Serve on stdin/stdout until end of input; logs go to stderr only."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    calls = Calls(ledger, read_only=read_only)
    with Services(ledger, catalog, seal_key=seal_key) as services:
        try:
            server = build(ledger, catalog, calls, services)
            anyio.run(server.run_stdio_async)
        finally:
            calls.close()
