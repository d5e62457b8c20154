"""``kei events tail``: the latest events, and (``--follow``) new ones as they commit.

Thin: parses options, calls ``kei.app.ledger.tail`` and prints. Data on stdout, chain
warnings on stderr; Ctrl-C ends a follow quietly with exit 0.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kei.adapters.cli.context import answering, open_ledger
from kei.adapters.cli.options import JsonLines, number
from kei.adapters.cli.output import EventPrinter
from kei.app.ledger.tail import Follower, TailFilter, latest

Lines = Annotated[
    int, number("-n", "--lines", least=0, help="How many of the latest events to show.")
]
Follow = Annotated[
    bool, typer.Option("--follow", "-f", help="Keep printing new events as they commit.")
]
TypeGlobs = Annotated[
    list[str] | None,
    typer.Option(
        "--type", metavar="GLOB", help="Only event types matching this glob (repeatable)."
    ),
]
StreamGlobs = Annotated[
    list[str] | None,
    typer.Option("--stream", metavar="GLOB", help="Only streams matching this glob (repeatable)."),
]


def register(app: typer.Typer) -> None:
    """Add ``tail`` to ``kei events`` (a lazy group, see ``cli/app.py``)."""
    app.command("tail")(tail)


def tail(
    ctx: typer.Context,
    lines: Lines = 20,
    follow: Follow = False,
    as_json: JsonLines = False,
    types: TypeGlobs = None,
    streams: StreamGlobs = None,
) -> None:
    """Show the latest events; with --follow, keep going and check every new link."""
    where = TailFilter(types=tuple(types or ()), streams=tuple(streams or ()))
    printer = EventPrinter(as_json=as_json)
    with (
        answering(ctx) as g,
        open_ledger(g.settings(), read_only=True) as ledger,
    ):
        shown, head = latest(ledger.store, lines, where)
        for event in shown:
            printer.show(event)
        if not follow:
            return
        try:
            for item in Follower(ledger.store, after=head, where=where).follow():
                printer.show(item)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
