"""``kei events export``: the log as JSON lines for other tools (``kei.adapters.jsonl``).

Thin: opens the ledger, streams the events to stdout or ``--out`` (written to a
temporary file beside it and renamed when complete, so no half-written export is
left behind), and reports the count on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated

import typer

from kei.adapters.cli.context import handled, open_ledger, stderr
from kei.adapters.cli.output import stdout_closed_ok
from kei.errors import InputError

FORMATS = ("jsonl",)


def register(events_app: typer.Typer) -> None:
    events_app.command("export")(export)


def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="Output format: jsonl.")] = "jsonl",
    since: Annotated[
        int, typer.Option("--since", min=0, help="Only events after this position.")
    ] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Every event with its hashes, signature and stored bytes, one JSON object per line."""
    from kei.adapters.jsonl import export_jsonl

    with handled(ctx) as g, stdout_closed_ok():
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
        with open_ledger(g.settings()) as ledger:
            if out is None:
                count = export_jsonl(ledger.store, sys.stdout.buffer, since=since)
                sys.stdout.flush()
            else:
                count = _to_file(out, lambda f: export_jsonl(ledger.store, f, since=since))
        stderr().print(f"exported {count} events", markup=False)


def _to_file(path: Path, write: Callable[[IO[bytes]], int]) -> int:
    tmp = path.with_name(f".{path.name}.part")
    try:
        with tmp.open("wb") as f:
            count: int = write(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return count
