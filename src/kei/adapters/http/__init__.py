"""``kei serve``: kei's HTTP API, a driving adapter beside ``cli/`` and ``mcp/``.

Starlette routes (``app.py``) over the same ``app/`` services as the CLI; bodies are
encoded and decoded by msgspec; blocking ledger work runs on threads (``backend.py``)
so the event loop never waits on the store. The contract is ``docs/http.md``.
"""
