"""``kei replay --from FILE``: verify a bundle, then replay it into a store, all or nothing.

Thin: resolves the target (``--db`` here, else the global store), calls
``kei.app.bundle.replay``, prints a short report on stdout (``--json``: one
object). Progress bars go to stderr, on a terminal only. Exit codes: 0 replayed (or
verified, with ``--dry-run``); 1 the bundle was refused (hostile, inconsistent, a
fork, another ledger, a digest mismatch); 2 usage; 3 the store cannot be opened; 75
another writer appended while the bundle was checked.
``kei hibernate import`` is the same command.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from msgspec.structs import replace

from kei.adapters.cli.context import handled, seal_key_or_none
from kei.adapters.cli.exits import Exit
from kei.adapters.cli.options import DryRun, JsonObject
from kei.adapters.cli.output import json_line, progress_bars
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.app.bundle.report import ReplayReport

BundleArg = Annotated[
    Path | None,
    typer.Argument(metavar="BUNDLE", help="The bundle to replay (.tar.zst); required."),
]
FromOption = Annotated[
    Path | None,
    typer.Option(
        "--from", metavar="BUNDLE", help="The same bundle as an option, as kei-hibernate named it."
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", metavar="URL", help="The store to replay into (default: the global one)."),
]

_MODES = {
    "restore": "restored the ledger into an empty store",
    "extend": "extended the store's log",
    "prefix": "nothing to append: the bundle is a prefix of the store's log",
}


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


def replay(
    ctx: typer.Context,
    bundle: BundleArg = None,
    db: DbOption = None,
    dry_run: DryRun = False,
    as_json: JsonObject = False,
    old_from: FromOption = None,
) -> None:
    """Verify a bundle (signatures, chain, checkpoint, digests) and replay it into a store."""
    from kei.adapters.cli.budget_lines import after_import
    from kei.app.bundle.replay import replay_bundle
    from kei.app.ledger.verification import default_jobs

    with handled(ctx) as g:
        source = the_bundle(bundle, old_from)
        settings = g.settings()
        # an empty --db is refused by settings(), never read as "the global store"
        target = settings if db is None else replace(g, db=db).settings()
        url = target.db_url
        with progress_bars() as tick, collector_paused():
            report = replay_bundle(
                source, url, dry_run=dry_run, jobs=default_jobs(),
                synchronous=settings.synchronous, progress=tick,
                seal_key=None if dry_run else seal_key_or_none(settings),
            )  # fmt: skip
        checked = after_import(target, 0 if report.dry_run else report.appended)
        if as_json:
            json_line({**report.to_dict(),
                       "budget_crossings": [c.to_dict() for c in checked.crossings]})  # fmt: skip
        else:
            sys.stdout.write(render(report))
    raise typer.Exit(int(Exit.OK if report.ok else Exit.FINDINGS))


def the_bundle(bundle: Path | None, old_from: Path | None) -> Path:
    """BUNDLE, or ``--from BUNDLE``: the file a command works on is an argument
    everywhere in ``kei``, and ``kei replay --from brain.tar.zst`` is also how kei's
    users (and upstream kei-hibernate's) have always written it, so both stay."""
    if bundle is not None and old_from is not None:
        raise InputError("give the bundle once, as BUNDLE or as --from BUNDLE")
    found = bundle if bundle is not None else old_from
    if found is None:
        raise InputError("missing BUNDLE", hint="name the .tar.zst `kei hibernate export` wrote")
    return found


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the replay, in this command's own process.

    A replay allocates a few objects per event (rows, records, events opened for
    the fold), millions in all, none in a cycle; each collection walks the live
    ones again, about 1 CPU-s of a million-event replay, on the core the
    verification workers need. The library leaves the collector alone: its callers'
    processes are theirs.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def render(report: ReplayReport) -> str:
    """The short human report."""
    m = report.manifest
    what = _MODES[report.mode]
    if report.dry_run:
        what = f"dry run, nothing written: would have {what.replace('nothing to append: ', '')}"
    matched = [d.name for d in report.digests if d.status == "matched"]
    skipped = [d.name for d in report.digests if d.status == "not-compared"]
    lines = [
        f"{report.source} -> {report.target}: {what}",
        f"ledger: {m.ledger_id} ({m.ledger_name})",
        f"events: {m.events} verified (positions {m.first_position}..{m.last_position}), "
        f"{report.appended} appended",
        f"head: {m.head_hash}",
        f"keys: {report.keys}; manifest signed by {m.exporter_key_id}",
        f"digests: {len(matched)} of {len(report.digests)} matched"
        + (f": {', '.join(matched)}" if matched else ""),
    ]
    if skipped:
        lines.append(f"not compared (not in this kei, or another version): {', '.join(skipped)}")
    differs = [d.name for d in report.live if d.status == "differs"]
    if differs:
        lines.append(
            f"after the commit, this store's projections differ: {', '.join(differs)} "
            "(run `kei projections rebuild`)"
        )
    return "\n".join(lines) + "\n"
