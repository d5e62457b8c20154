"""The record of one MCP tool call (``kei mcp serve``): who called which tool, with a
digest of what, how it ended and how long it took.

A call that changes something appends this event in the same batch, and so the same
transaction, as the events it caused: the effect and its record land together or not
at all. A write call that appends nothing (refused by a rule, a no-op, a bad input)
is recorded alone, with ``is_error`` and the one-line ``error`` the client was given.
The arguments themselves are never stored: ``args_sha256`` is the SHA-256 of their
canonical JSON (sorted keys, no spaces, UTF-8), so a client that kept them can prove
what it sent. Stream ``mcp/<session>``: one per server process.
"""

from __future__ import annotations

from typing import Final

from kei.domain.events.payload import Payload

MCP_STREAM_PREFIX: Final = "mcp/"
TOOL_CALLED: Final = "mcp.tool.called"


def mcp_stream(session: str) -> str:
    return f"{MCP_STREAM_PREFIX}{session}"


class ToolCalled(Payload, frozen=True, kw_only=True):
    """One ``tools/call`` answered by kei's MCP server.

    ``client_name`` / ``client_version``: the client's ``clientInfo`` (blank when it
    sent none); ``appended``: how many events the call appended besides this one (the
    batch's other events, leak notes excluded); ``duration_us``: from receiving the
    call to sealing the batch (or to the refusal).
    """

    session: str
    client_name: str = ""
    client_version: str = ""
    protocol_version: str = ""
    tool: str
    args_sha256: str
    is_error: bool = False
    error: str = ""
    appended: int = 0
    duration_us: int
