"""The ``kei`` command: global options, and each command group registered from its module
in ``commands/``."""

from __future__ import annotations

from typing import Annotated

import typer

from kei.adapters.cli.commands import (
    agent_cmd,
    cost_cmd,
    demo_cmd,
    events_io_cmd,
    hibernate_cmd,
    hook_cmd,
    import_cmd,
    init_cmd,
    keys_cmd,
    leaks_cmd,
    llm_cmd,
    machine_cmd,
    mcp_cmd,
    memory_cmd,
    models_cmd,
    projections_cmd,
    prove_cmd,
    replay_cmd,
    retro_cmd,
    route_cmd,
    skill_cmd,
    tail_cmd,
    verify_cmd,
    witness_cmd,
)
from kei.adapters.cli.context import Globals
from kei.adapters.cli.output import route_warnings

app = typer.Typer(
    name="kei",
    help="The tamper-evident memory of an AI-agent orchestrator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Store URL or SQLite path (default: $KEI_DB, else $KEI_HOME/ledger.db)."
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Signing key name or file (default: $KEI_KEY, else 'default')."),
    ] = None,
    synchronous: Annotated[
        str | None,
        typer.Option("--sqlite-sync", help="SQLite durability: FULL (default), NORMAL or OFF."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show tracebacks on errors.")] = False,
) -> None:
    ctx.obj = Globals(db=db, key=key, synchronous=synchronous, verbose=verbose)
    route_warnings()  # a read model's skipped events, as `kei: WARNING:` lines


init_cmd.register(app)
keys_cmd.register(app)
verify_cmd.register(app)
prove_cmd.register(app)
tail_cmd.register(app)
events_io_cmd.register(tail_cmd.events_app)
models_cmd.register(app)
leaks_cmd.register(app)
llm_cmd.register(app)
machine_cmd.register(app)
memory_cmd.register(app)
projections_cmd.register(app)
agent_cmd.register(app)
cost_cmd.register(app)
skill_cmd.register(app)
import_cmd.register(app)
hibernate_cmd.register(app)
replay_cmd.register(app)
retro_cmd.register(app)
route_cmd.register(app)
demo_cmd.register(app)
witness_cmd.register(app)
mcp_cmd.register(app)
hook_cmd.register(app)


def main() -> None:
    from kei.adapters.cli.output import run

    run(app)
