"""What the client sent, seen before the SDK validates it: a ``tools/call`` middleware.

Two things need the call as sent, not as the SDK hands it to a tool function. The
argument digest of ``mcp.tool.called`` is taken over the arguments exactly as the
client sent them (so a client that kept them can prove what it sent). And a call of a
changing tool that the SDK refuses itself (a missing or mistyped argument) never
reaches kei's tool function, yet is a call like any other: the watch records it alone,
with the one line the client got.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from kei.adapters.mcp.calls import SENT, Calls, Sent, squash

__all__ = ["Watch"]


class Watch:
    """The middleware; ``changing`` names the tools whose every call is recorded."""

    def __init__(self, calls: Calls, changing: frozenset[str]) -> None:
        self.calls, self.changing = calls, changing

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params
        if ctx.method != "tools/call" or ctx.request_id is None or not isinstance(params, Mapping):
            return await call_next(ctx)
        arguments = params.get("arguments")
        sent = Sent(str(params.get("name")), arguments if isinstance(arguments, Mapping) else {})
        token = SENT.set(sent)
        try:
            result = await call_next(ctx)
        finally:
            SENT.reset(token)
        if sent.ran or not _is_error(result):
            return result
        line = one_line_of(sent.tool, _first_text(result))
        if sent.tool in self.changing:
            await self.calls.refused(ctx, sent.tool, sent.arguments, line)
        return {"content": [{"type": "text", "text": line}], "isError": True}


def _is_error(result: HandlerResult) -> bool:
    """The handler's result is a dict in wire form (``isError``) or a result model."""
    if isinstance(result, Mapping):
        return result.get("isError") is True
    return getattr(result, "is_error", False) is True


def _first_text(result: HandlerResult) -> str:
    content = (
        result.get("content") if isinstance(result, Mapping) else getattr(result, "content", None)
    )
    first = content[0] if isinstance(content, list) and content else None
    text = first.get("text") if isinstance(first, Mapping) else getattr(first, "text", None)
    return text if isinstance(text, str) else "refused before kei saw it"


def one_line_of(tool: str, text: str) -> str:
    """The SDK's argument-validation report (pydantic's, several lines, quoting the values
    sent) as one line naming only the fields and what is wrong with them; any other
    text squashed to one line."""
    lines = text.splitlines()
    if len(lines) < 2:
        return squash(text)
    problems = []
    for name, detail in itertools.pairwise(lines[1:]):
        if name[:1].isspace() or not detail[:1].isspace():
            continue
        problems.append(f"{name.strip()}: {detail.split(' [type=')[0].strip()}")
    return squash(f"{tool}: invalid arguments: " + ("; ".join(problems) or lines[0]))
