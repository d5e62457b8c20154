"""``kei events export|import``: the log as JSON lines for other tools, and back.

Thin: export (``kei.app.jsonl.export``) streams the events to stdout or ``--out``
(``safe_output``: written to a temporary file beside it and put in place when
complete, so no half-written export is left behind, and never over the store, a key,
a device or, without ``--force``, an existing file); import (``kei.app.jsonl.importing``) verifies every line
and adds the new events to the store in one transaction, or nothing. Counts go to
stderr.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import answering, handled, open_ledger, seal_key_or_none, stderr
from kei.adapters.cli.options import AfterPosition, DryRun, EventsFormat, Force, JsonObject
from kei.adapters.cli.output import json_line
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.files.safe_output import Protected

FORMATS = ("jsonl",)


def register(events_app: typer.Typer) -> None:
    events_app.command("export")(export)
    events_app.command("import")(import_)


def export(
    ctx: typer.Context,
    fmt: Annotated[EventsFormat, typer.Option("--format", help="Output format.")] = "jsonl",
    after: AfterPosition = 0,
    out: Annotated[
        str | None,
        typer.Option("--out", metavar="FILE", help="Write to this file (default, or '-': stdout)."),
    ] = None,
    force: Force = False,
) -> None:
    """Every event with its hashes, signature and stored bytes, one JSON object per line."""
    from kei.adapters.files.safe_output import check_output
    from kei.app.jsonl.export import export_jsonl

    with answering(ctx) as g:
        _check_format(fmt)
        settings = g.settings()
        protected = settings.protected()
        if out is not None and out != "-":
            check_output(out, protected, force=force)  # before reading the log
        with open_ledger(settings, read_only=True) as ledger:
            if out is None or out == "-":
                count = export_jsonl(ledger.store, sys.stdout.buffer, since=after)
                sys.stdout.flush()
            else:
                write = partial(export_jsonl, ledger.store, since=after)
                count = _to_file(out, protected, force, write)
        stderr().print(f"exported {count} events", markup=False)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")


def _to_file(
    name: str, protected: Protected, force: bool, write: Callable[[IO[bytes]], int]
) -> int:
    """``write`` into the file ``name``, put in place only when complete."""
    from kei.adapters.files.safe_output import OutputFile, write_error

    with OutputFile(name, protected, force=force) as out:
        try:
            count = write(out.fh)
        except OSError as exc:
            raise write_error(out.target, exc) from None
        out.commit()
    return count


def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE", help="JSON lines, or - for stdin.")],
    fmt: Annotated[EventsFormat, typer.Option("--format", help="Input format.")] = "jsonl",
    dry_run: DryRun = False,
    as_json: JsonObject = False,
) -> None:
    """Verify events written by `kei events export` and add the new ones, all or nothing."""
    from kei.adapters.cli.budget_lines import after_import
    from kei.app.jsonl.importing import import_jsonl

    with handled(ctx) as g:
        _check_format(fmt)
        settings = g.settings()
        with _input(source) as lines:
            done = import_jsonl(
                lines, settings.db_url, dry_run=dry_run, synchronous=settings.synchronous,
                seal_key=None if dry_run else seal_key_or_none(settings),
            )  # fmt: skip
        verb = "would append" if dry_run else "appended"
        stderr().print(
            f"{done.lines} events verified ({done.mode}); {verb} {done.new}; "
            f"head at position {done.head_position}",
            markup=False,
        )
        checked = after_import(settings, 0 if dry_run else done.new)  # costs may be among them
        if as_json:
            json_line({"ok": True, "dry_run": dry_run, "verified": done.lines, "mode": done.mode,
                       "new": done.new, "head_position": done.head_position,
                       "budget_crossings": [c.to_dict() for c in checked.crossings]})  # fmt: skip


@contextlib.contextmanager
def _input(source: str) -> Iterator[Iterator[bytes]]:
    """The lines to import: stdin for ``-``, else a regular file; each line bounded."""
    from kei.adapters.files.bounded_read import bounded_lines, open_regular

    if source == "-":
        yield bounded_lines(sys.stdin.buffer, "standard input")
        return
    hint = "give a file written by `kei events export --format jsonl`, or - for stdin"
    with open_regular(Path(source), hint=hint) as f:
        yield bounded_lines(f, source)
