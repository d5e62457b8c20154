"""``kei mcp serve``: kei as an MCP server over stdio, a driving adapter beside ``cli/``.

Built on the official ``mcp`` SDK (2.x, the ``kei[mcp]`` extra), which answers the
protocol itself: version negotiation, ``ping``, no reply to notifications, a tool's
failure as an ``isError`` result. This package only maps tools, resources and prompts
onto the ``app/`` services the CLI uses (``server.py`` builds the server, ``tools.py``,
``views.py`` the tools, resources and prompts), and records every call that may change
the log (``calls.py``). Nothing here prints: stdout carries JSON-RPC frames only, logs
go to stderr. Only ``kei mcp serve`` imports this package, so ``import kei`` and every
other command stay free of the SDK and its dependencies.
"""
