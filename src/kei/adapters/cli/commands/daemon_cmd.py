"""``kei daemon start|stop|status``: a warm process that makes every ``kei`` start fast.

While it runs, each ``kei`` command (but ``daemon``, ``mcp``, ``notify``, ``net``,
``serve``) runs in a fork of it with the caller's stdin, stdout, stderr, environment,
directory and umask; ``KEI_DAEMON=off`` bypasses it, ``KEI_DAEMON=auto`` starts one
when none runs. See ``kei.adapters.daemon``.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import answering, command_group, stderr
from kei.adapters.cli.options import JsonObject
from kei.adapters.cli.output import json_line
from kei.app.json_form import rfc3339
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.daemon.control import Status

IDLE_MAX_S = 10**9  # about 31 years: past that a socket timeout does not fit
daemon_app, register = command_group(
    "daemon", "A warm process that makes kei commands start in milliseconds."
)


def _folder() -> str:
    from kei.adapters.daemon.place import daemon_dir

    return daemon_dir(os.environ)


@daemon_app.command("start")
def start(
    ctx: typer.Context,
    idle: Annotated[
        float,
        typer.Option(
            "--idle",
            metavar="SECONDS",
            min=0,
            max=IDLE_MAX_S,
            help="Stop after this long without a command (0: never).",
        ),
    ] = 3600.0,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Serve in this process (for a service manager).")
    ] = False,
    as_json: JsonObject = False,
) -> None:
    """Start this user's kei daemon (or report the one already running)."""
    from kei.adapters.daemon import control, server

    with answering(ctx):
        if not math.isfinite(idle):
            raise InputError(f"--idle must be a number of seconds, got {idle}",
                             hint="give 0 to never stop")  # fmt: skip
        if foreground:
            server.prepare(_folder())
            if not server.serve(_folder(), idle):
                stderr().print("kei: error: a kei daemon is already running", markup=False)
                raise typer.Exit(1)
            return
        running = control.start(_folder(), idle)
        if as_json:
            json_line(_fields(running))
            return
        stderr().print(f"kei daemon running: pid {running.pid}, socket {running.socket}",
                       markup=False)  # fmt: skip


@daemon_app.command("stop")
def stop(ctx: typer.Context, as_json: JsonObject = False) -> None:
    """Stop this user's kei daemon (nothing to do when none runs)."""
    from kei.adapters.daemon import control

    with answering(ctx):
        pid = control.stop(_folder())
        if as_json:
            json_line({"stopped": pid is not None, "pid": pid})
            return
        stderr().print("kei daemon: not running" if pid is None else f"kei daemon {pid} stopped",
                       markup=False)  # fmt: skip


@daemon_app.command("status")
def status(ctx: typer.Context, as_json: JsonObject = False) -> None:
    """Show the running daemon (exit 1 when none runs)."""
    from kei.adapters.daemon import control

    with answering(ctx):
        running = control.status(_folder())
        if as_json:
            json_line(
                {"running": False} if running is None else {"running": True, **_fields(running)}
            )
        elif running is not None:
            typer.echo(f"running\tpid {running.pid}\tsince {rfc3339(running.started_us)}"
                       f"\tserved {running.served}\tsocket {running.socket}")  # fmt: skip
        else:
            typer.echo("not running")
        if running is None:
            raise typer.Exit(1)


def _fields(status: Status) -> dict[str, object]:
    """A status as JSON fields, its start time in RFC 3339."""
    return {"pid": status.pid, "started_at": rfc3339(status.started_us), "served": status.served,
            "idle_s": status.idle_s, "socket": status.socket}  # fmt: skip
