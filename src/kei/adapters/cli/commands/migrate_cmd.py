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
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import typer
from msgspec import Struct

from kei.adapters.cli.context import answering, command_group, open_ledger
from kei.adapters.cli.exits import MIGRATE_EXITS
from kei.adapters.cli.options import JsonObject, TargetOpt, number, option_group
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from kei.app.ledger.ledger import Ledger
    from kei.app.migrate.reports import RunReport, Step
    from kei.app.migrate.runner import RunOptions

    Shown = Callable[[Step], None] | None

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
AllowOlder = Annotated[
    bool,
    typer.Option(
        "--allow-out-of-order", help="Apply pending versions older than the newest applied one."
    ),
]


class Where(Struct, frozen=True):
    """``--target`` and ``--dir``, as one value."""

    target: str | None
    folder: Path

    def url(self) -> str:
        """The target URL; one line when none was given (called inside ``answering``)."""
        from kei.errors import InputError

        if not self.target:
            raise InputError("no target database", hint="pass --target URL or set DATABASE_URL")
        return self.target


at_target: Final = option_group(
    "where", {"target": TargetOpt, "folder": DirOpt}, Where, {"folder": MIGRATIONS}
)
run_options: Final = option_group(
    "options",
    {"accept_drift": AcceptDrift, "resolve_partial": ResolveOpt, "lock_timeout": LockTimeout},
    dict,
    {"accept_drift": False, "lock_timeout": 300},
)
"""``--accept-drift``, ``--resolve-partial`` and ``--lock-timeout``, as one dict."""


@migrate_app.command("up")
@at_target
@run_options
def up(ctx: typer.Context, *, where: Where, options: dict[str, Any],
       allow_out_of_order: AllowOlder = False, as_json: JsonObject = False) -> None:  # fmt: skip
    """Apply every pending migration, in version order; each is signed into the log.
    Without --target: kei's own store steps, then stale projections are rebuilt."""
    from kei.app.migrate.runner import migrate_up

    if where.target is None:
        from kei.adapters.cli.commands.migrate_store_cmd import own_up

        own_up(ctx, as_json=as_json)
        return

    def run(ledger: Ledger, show: Shown) -> RunReport:
        chosen = _options(options, allow_out_of_order=allow_out_of_order)
        return migrate_up(ledger, where.url(), where.folder, chosen, on_step=show)

    _run(ctx, run, as_json)


@migrate_app.command("down")
@at_target
@run_options
def down(
    ctx: typer.Context,
    count: Annotated[
        int,
        typer.Argument(metavar="[N]", min=1, max=100_000, help="How many to revert (1)."),
    ] = 1,
    *,
    where: Where,
    options: dict[str, Any],
    as_json: JsonObject = False,
) -> None:
    """Revert the N newest applied migrations with their down files, newest first."""
    from kei.app.migrate.runner import migrate_down

    def run(ledger: Ledger, show: Shown) -> RunReport:
        chosen = _options(options)
        return migrate_down(ledger, where.url(), where.folder, count, chosen, on_step=show)

    _run(ctx, run, as_json)


@migrate_app.command("status")
@at_target
def status(ctx: typer.Context, *, where: Where, as_json: JsonObject = False) -> None:
    """Every migration as APPLIED, PENDING, MISSING or PARTIAL, and what disagrees.
    Without --target: kei's own store, its projections and events per schema version."""
    if where.target is None:
        from kei.adapters.cli.commands.migrate_store_cmd import own_status

        own_status(ctx, as_json=as_json)
        return
    from kei.adapters.cli.commands.migrate_render import status_json, status_lines
    from kei.app.migrate.status import migrate_status
    from kei.errors import StoreNotInitialisedError

    with answering(ctx, table=MIGRATE_EXITS) as g:
        url = where.url()
        try:
            with open_ledger(g.settings(), read_only=True) as ledger:
                report = migrate_status(ledger, url, where.folder)
        except StoreNotInitialisedError:
            report = migrate_status(None, url, where.folder)  # no ledger: files and table only
        if as_json:
            json_line(status_json(report))
        else:
            print("\n".join(status_lines(report)))


@migrate_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the migration does.")],
    folder: DirOpt = MIGRATIONS,
    as_json: JsonObject = False,
) -> None:
    """Write <version>_<name>.sql and its .down.sql (never overwrites a file)."""
    from kei.app.migrate.status import migrate_create

    with answering(ctx, table=MIGRATE_EXITS):
        up_file, down_file = migrate_create(folder, name)
        if as_json:
            json_line({"up": str(up_file), "down": str(down_file)})
        else:
            print(f"{up_file}\n{down_file}")


@migrate_app.command("verify")
@at_target
def verify(
    ctx: typer.Context,
    *,
    where: Where,
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
            report = migrate_verify(ledger, where.url(), where.folder, record=not no_record)
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
            report = import_kei_migrate(ledger, Where(target, MIGRATIONS).url(), dry_run=dry_run)
        if as_json:
            json_line(report.to_dict())
        else:
            print("\n".join(import_lines(report)))


def _options(given: dict[str, Any], **more: Any) -> RunOptions:
    from kei.app.migrate.runner import RunOptions

    timeout = float(given.pop("lock_timeout"))
    return RunOptions(**given, **more, lock_timeout=timeout)


def _run(ctx: typer.Context, work: Callable[[Ledger, Shown], RunReport], as_json: bool) -> None:
    """``up`` or ``down``: the ledger opened with its key, the work done, its report."""
    with answering(ctx, table=MIGRATE_EXITS) as g:
        with open_ledger(g.settings(), with_key=True) as ledger:
            report = work(ledger, _step_printer(as_json))
        _answer_run(report, as_json)


def _step_printer(as_json: bool) -> Shown:
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
