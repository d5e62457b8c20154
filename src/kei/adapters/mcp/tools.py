"""The tools that change the log: each calls one ``app/`` service, as the CLI command of
the same name does, inside ``Calls.write`` (so its batch carries its ``mcp.tool.called``).

Arguments are the CLI's options under the same names (``agent_fork`` takes what ``kei
agent fork`` takes); rules, pricing and checks are the services' and the domain's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

from kei.adapters.mcp.calls import Calls
from kei.app.commands import Answer, works
from kei.app.services import Services

WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def register_writes(server: MCPServer, calls: Calls, services: Services) -> frozenset[str]:
    """Add every tool that appends (see ``docs/cli.md``, ``kei mcp serve``); their names."""
    tools = [_write_tool(calls, work) for work in works(services)]
    for fn in tools:
        server.add_tool(fn, annotations=WRITES, structured_output=True)
    return frozenset(fn.__name__ for fn in tools)


def _write_tool(calls: Calls, work: Callable[..., Answer]) -> Callable[..., Awaitable[Answer]]:
    """The tool named as ``work``, taking ``work``'s arguments (and the SDK's ``Context``):
    ``work`` runs inside ``calls.write``, recorded with its arguments, defaults filled in.
    The arguments are declared once, by ``work``'s signature, which the SDK reads."""
    signature = inspect.signature(work, eval_str=True)

    async def tool(ctx: Context, **given: Any) -> Answer:
        bound = signature.bind(**given)
        bound.apply_defaults()
        args = dict(bound.arguments)
        return await calls.write(ctx, work.__name__, args, lambda: work(**args))

    functools.update_wrapper(tool, work)
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
    params = [context, *signature.parameters.values()]
    tool.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    tool.__annotations__ = {p.name: p.annotation for p in params}
    tool.__annotations__["return"] = signature.return_annotation
    return tool
