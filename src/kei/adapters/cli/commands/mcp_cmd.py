"""``kei mcp serve``: kei as an MCP server over stdio (the ``kei[mcp]`` extra).

Thin: opens the ledger with the server's key (``--key`` / ``KEI_KEY``: one key per client
makes each client's calls attributable and revocable with ``kei keys revoke``), the
read models' seal key and the model catalog, and hands them to ``kei.adapters.mcp``.
The SDK is imported only here, inside the command: ``import kei`` and every other
command never load it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kei.adapters.cli.context import command_group, handled, load_signing_key, seal_key
from kei.errors import InputError

mcp_app, register = command_group("mcp", "kei as an MCP server for agents (needs the mcp extra).")

ReadOnly = Annotated[
    bool, typer.Option("--read-only", help="Serve the read tools only; refuse every change.")
]


@mcp_app.command("serve")
def serve(ctx: typer.Context, read_only: ReadOnly = False) -> None:
    """Serve kei's tools, resources and prompts over stdio until the client hangs up."""
    with handled(ctx) as g:
        try:
            from kei.adapters.mcp.server import serve as serve_stdio
        except ImportError as exc:
            raise InputError(
                f"kei mcp needs the MCP SDK, which is not installed ({exc.name or exc})",
                hint="pip install 'kei[mcp]'",
            ) from None
        from kei.adapters.files.catalog import load_catalog
        from kei.app.ledger.ledger import Ledger

        settings = g.settings()
        key = None if read_only else load_signing_key(settings)
        catalog = load_catalog(settings.home)
        ledger = Ledger.open(
            settings.db_url,
            key=key,
            synchronous=settings.synchronous,
            retry=settings.retry,
            checkpoint_state=settings.checkpoint_state,
        )
        with ledger:
            try:
                serve_stdio(ledger, catalog, seal_key=seal_key(settings), read_only=read_only)
            except KeyboardInterrupt:  # stopped by hand: every batch landed whole or not at all
                raise typer.Exit(130) from None
