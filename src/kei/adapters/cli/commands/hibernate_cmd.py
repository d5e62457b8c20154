"""``kei hibernate export|inspect|import``: the whole log in one signed bundle file.

Thin: each command calls ``kei.app.bundle``. ``export`` writes the bundle
atomically and says what it wrote on stderr; ``inspect`` prints the manifest and
every problem on stdout (``--json``: one object) and writes nothing; ``import`` is
``kei replay`` under this group's name. Exit codes as everywhere: 0 fine, 1 a bundle
problem, 2 usage, 3 the store cannot be opened.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.commands import replay_cmd
from kei.adapters.cli.context import command_group, handled, open_ledger, stderr
from kei.adapters.cli.exits import Exit
from kei.adapters.cli.options import AfterPosition, DryRun, Force, JsonObject, number
from kei.adapters.cli.output import json_line, progress_bars
from kei.adapters.files.safe_output import check_output, shown
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.app.bundle.inspect import Inspection

hibernate_app, register = command_group(
    "hibernate", "Bundles: the whole signed log in one file, to move or restore it."
)
InspectedBundle = Annotated[Path, typer.Argument(metavar="FILE", help="The bundle to inspect.")]


@hibernate_app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[
        str, typer.Option("--out", "-o", metavar="FILE", help="The bundle to write (.tar.zst).")
    ],
    after: AfterPosition = 0,
    level: Annotated[int, number("--level", most=19, help="zstd level (1-19).")] = 3,
    force: Force = False,
    as_json: JsonObject = False,
) -> None:
    """Write the log (or the events after --after POSITION) as a signed, deterministic bundle."""
    from kei.app.bundle.export import export_bundle

    with handled(ctx) as g:
        settings = g.settings()
        if out == "-":
            raise InputError("a bundle is written to a file, not to stdout", hint="name a file")
        protected = settings.protected()
        target = check_output(out, protected, force=force)  # before any work
        # Read-only: export writes nothing into the store (whose disk may be full).
        with (
            open_ledger(settings, with_key=True, read_only=True) as ledger,
            progress_bars() as bars,
        ):
            total = ledger.store.count()
            tick = None if bars is None else (lambda n: bars("exporting", n, total))
            report = export_bundle(
                ledger, target, since=after, level=level, progress=tick,
                force=force, protected=protected,
            )  # fmt: skip
        m = report.manifest
        if as_json:
            json_line({"ok": True, "file": str(target), "events": m.events,
                       "first_position": m.first_position, "last_position": m.last_position,
                       "segments": report.segments, "bytes": report.bytes,
                       "head_hash": m.head_hash})  # fmt: skip
        stderr().print(
            f"kei: wrote {shown(out)}: {m.events} events (positions {m.first_position}.."
            f"{m.last_position}) in {report.segments} segment(s), {report.bytes} bytes; "
            f"head {m.head_hash}; {len(m.projections)} projection digests",
            markup=False,
        )


@hibernate_app.command("inspect")
def inspect(ctx: typer.Context, bundle: InspectedBundle, as_json: JsonObject = False) -> None:
    """Print a bundle's manifest and check its structure, writing nothing."""
    from kei.app.bundle.inspect import inspect_bundle

    with handled(ctx):
        found = inspect_bundle(bundle)
        if as_json:
            json_line(found.to_dict())
        else:
            sys.stdout.write(render(found))
    raise typer.Exit(int(Exit.OK if found.ok else Exit.FINDINGS))


def render(found: Inspection) -> str:
    """The manifest as readable lines, then one line per problem."""
    lines = [f"bundle {found.path}"]
    m = found.manifest
    if m is not None:
        lines += [
            f"format: {m.format} v{m.format_version}",
            f"ledger: {m.ledger_id} ({m.ledger_name})",
            f"exported by key {m.exporter_key_id} on {m.machine}; head event at {m.created_at}",
            f"events: {m.events} (positions {m.first_position}..{m.last_position}, "
            f"sequences {m.first_seq}..{m.last_seq})",
            f"previous hash: {m.prev_hash}",
            f"head hash: {m.head_hash}",
            f"files: {len(m.files)}",
            *(f"  {f.name}\t{f.size}\t{f.sha256}" for f in m.files),
            f"projections: {len(m.projections)}",
            *(f"  {p.name}\tv{p.version}\t{p.digest}" for p in m.projections),
        ]
    if found.problems:
        lines.append(f"problems: {len(found.problems)}")
        lines += [f"  {p.kind}: {p}" for p in found.problems]
    else:
        lines.append(f"problems: none ({found.events_read} events read)")
    return "\n".join(lines) + "\n"


@hibernate_app.command("import")
def import_(
    ctx: typer.Context,
    bundle: replay_cmd.BundleArg = None,
    db: replay_cmd.DbOption = None,
    dry_run: DryRun = False,
    as_json: JsonObject = False,
    old_from: replay_cmd.FromOption = None,
) -> None:
    """Verify a bundle and replay it into a store (the same as `kei replay`)."""
    replay_cmd.replay(ctx, bundle, db, dry_run, as_json, old_from)
