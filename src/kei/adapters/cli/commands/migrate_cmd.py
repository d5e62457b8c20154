"""``kei migrate up|down|status|create|verify``: SQL migrations of another database, every
change signed into kei's log.

Thin: ``kei.app.migrate`` runs and records; this module parses, calls and renders
(``migrate_render.py``). The target is ``--target URL`` (also ``--database-url``, or
``$DATABASE_URL`` as upstream kei-migrate reads it); its credentials are used to
connect and never printed or recorded: output names the target by its identity
(``postgresql://host:5432/db``). A migration that failed, a partial run, refused drift
and ``verify``'s disagreements exit 1; a bad argument exits 2 with nothing run or
appended; a lock another runner holds past ``--lock-timeout`` exits 75.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from kei.adapters.cli.context import answering, command_group, open_ledger
from kei.adapters.cli.exits import MIGRATE_EXITS
from kei.adapters.cli.options import JsonObject, TargetOpt, number
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from kei.app.migrate.reports import RunReport, Step

migrate_app, register = command_group(
    "migrate", "SQL migrations of a database (SQLite, PostgreSQL, MySQL), each change signed."
)

DirOpt = Annotated[Path, typer.Option("--dir", metavar="FOLDER", help="The migrations folder.")]
LockTimeout = Annotated[
    int,
    number(
        "--lock-timeout",
        least=0,
        most=86_400,
        help="Seconds to wait for another runner's lock on the target.",
    ),
]
Resolution = Literal["completed", "undone"]
ResolveOpt = Annotated[
    Resolution | None,
    typer.Option(
        "--resolve-partial",
        help="Settle a partial MySQL/MariaDB run first: completed (all its changes are in "
        "the database) or undone (you took them out; it runs again).",
    ),
]
AcceptDrift = Annotated[
    bool,
    typer.Option(
        "--accept-drift",
        help="Go on although an applied file or tracker row was edited (recorded anyway).",
    ),
]
MIGRATIONS = Path("migrations")


@migrate_app.command("up")
def up(
    ctx: typer.Context,
    target: TargetOpt = None,
    folder: DirOpt = MIGRATIONS,
    allow_out_of_order: Annotated[
        bool,
        typer.Option(
            "--allow-out-of-order",
            help="Apply pending versions older than the newest applied one.",
        ),
    ] = False,
    accept_drift: AcceptDrift = False,
    resolve_partial: ResolveOpt = None,
    lock_timeout: LockTimeout = 300,
    as_json: JsonObject = False,
) -> None:
    """Apply every pending migration, in version order; each is signed into the log."""
    from kei.app.migrate.runner import RunOptions, migrate_up

    options = RunOptions(allow_out_of_order, accept_drift, resolve_partial, float(lock_timeout))
    with answering(ctx, table=MIGRATE_EXITS) as g:
        url = _url(target)
        with open_ledger(g.settings(), with_key=True) as ledger:
            report = migrate_up(ledger, url, folder, options, on_step=_step_printer(as_json))
        _answer_run(report, as_json)


@migrate_app.command("down")
def down(
    ctx: typer.Context,
    count: Annotated[
        int,
        typer.Argument(metavar="[N]", min=1, max=100_000, help="How many to revert (1)."),
    ] = 1,
    target: TargetOpt = None,
    folder: DirOpt = MIGRATIONS,
    accept_drift: AcceptDrift = False,
    resolve_partial: ResolveOpt = None,
    lock_timeout: LockTimeout = 300,
    as_json: JsonObject = False,
) -> None:
    """Revert the N newest applied migrations with their down files, newest first."""
    from kei.app.migrate.runner import RunOptions, migrate_down

    options = RunOptions(False, accept_drift, resolve_partial, float(lock_timeout))
    with answering(ctx, table=MIGRATE_EXITS) as g:
        url = _url(target)
        with open_ledger(g.settings(), with_key=True) as ledger:
            report = migrate_down(
                ledger, url, folder, count, options, on_step=_step_printer(as_json)
            )
        _answer_run(report, as_json)


@migrate_app.command("status")
def status(
    ctx: typer.Context,
    target: TargetOpt = None,
    folder: DirOpt = MIGRATIONS,
    as_json: JsonObject = False,
) -> None:
    """Every migration as APPLIED, PENDING, MISSING or PARTIAL, and what disagrees."""
    from kei.adapters.cli.commands.migrate_render import status_lines
    from kei.app.migrate.status import migrate_status
    from kei.errors import StoreNotInitialisedError

    with answering(ctx, table=MIGRATE_EXITS) as g:
        url = _url(target)
        try:
            with open_ledger(g.settings(), read_only=True) as ledger:
                report = migrate_status(ledger, url, folder)
        except StoreNotInitialisedError:
            report = migrate_status(None, url, folder)  # no ledger yet: files and table only
        if as_json:
            json_line(report.to_dict() | {"applied": report.applied, "pending": report.pending})
        else:
            print("\n".join(status_lines(report)))


@migrate_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the migration does.")],
    folder: DirOpt = MIGRATIONS,
) -> None:
    """Write <version>_<name>.sql and its .down.sql (never overwrites a file)."""
    from kei.app.migrate.status import migrate_create

    with answering(ctx, table=MIGRATE_EXITS):
        for path in migrate_create(folder, name):
            print(path)


@migrate_app.command("verify")
def verify(
    ctx: typer.Context,
    target: TargetOpt = None,
    folder: DirOpt = MIGRATIONS,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Report only; append no drift event.")
    ] = False,
    as_json: JsonObject = False,
) -> None:
    """Compare the files, the tracker table, the log and the live schema; every
    disagreement is reported (and recorded once), exit 1 when there is one."""
    from kei.adapters.cli.commands.migrate_render import verify_lines
    from kei.app.migrate.status import migrate_verify

    with answering(ctx, table=MIGRATE_EXITS) as g:
        with open_ledger(g.settings(), with_key=not no_record) as ledger:
            report = migrate_verify(ledger, _url(target), folder, record=not no_record)
        if as_json:
            json_line(report.to_dict() | {"ok": report.ok})
        else:
            print("\n".join(verify_lines(report)))
    if not report.ok:
        raise typer.Exit(1)


def import_tracker(ctx: typer.Context, target: str | None, *, dry_run: bool, as_json: bool) -> None:
    """``kei import kei-migrate``: the command lives in ``import_cmd``, its work here."""
    from kei.adapters.cli.commands.migrate_render import import_lines
    from kei.app.migrate.importing import import_kei_migrate

    with answering(ctx, table=MIGRATE_EXITS) as g:
        with open_ledger(g.settings(), with_key=not dry_run) as ledger:
            report = import_kei_migrate(ledger, _url(target), dry_run=dry_run)
        if as_json:
            json_line(report.to_dict())
        else:
            print("\n".join(import_lines(report)))


def _url(target: str | None) -> str:
    from kei.errors import InputError

    if not target:
        raise InputError("no target database", hint="pass --target URL or set DATABASE_URL")
    return target


def _step_printer(as_json: bool) -> Callable[[Step], None] | None:
    """Each migration's line as it lands (upstream's ``[up] V NAME — applied``)."""
    if as_json:
        return None
    from kei.adapters.cli.commands.migrate_render import step_line

    def show(step: Step) -> None:
        print(step_line(step), flush=True)

    return show


def _answer_run(report: RunReport, as_json: bool) -> None:
    from kei.adapters.cli.commands.migrate_render import run_lines
    from kei.adapters.cli.context import stderr

    if as_json:
        json_line(report.to_dict())
        return
    out, err = run_lines(report)
    if out:
        print("\n".join(out))
    for line in err:
        stderr().print(line, markup=False)
