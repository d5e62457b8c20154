"""The ``kei`` command: global options, ``--version``, and the table of commands.

Each command (or command group) is a line of :data:`COMMANDS`: its name, the module in
``commands/`` whose ``register(app)`` declares it, and the help ``kei --help`` lists.
Nothing in that table is imported until its command runs (``lazy.py``), so a write
such as ``kei agent fork`` loads the agent commands and no other. To add a command
group: write ``commands/<name>_cmd.py`` with ``group, register = command_group(...)``
and add ``"<name>": Lazy("<name>_cmd", "<its help>")`` here (the help must match the
group's own; ``tests/cli/test_lazy_cli.py`` checks).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Final

import typer

from kei.adapters.cli.entry import version_text
from kei.adapters.cli.lazy import GLOBALS, Group, Lazy, LazyGroup

_EVENTS: Final = {
    "tail": Lazy(
        "tail_cmd", "Show the latest events; with --follow, keep going and check every new link."
    ),
    "export": Lazy(
        "events_io_cmd",
        "Every event with its hashes, signature and stored bytes, one JSON object per line.",
    ),
    "import": Lazy(
        "events_io_cmd",
        "Verify events written by `kei events export` and add the new ones, all or nothing.",
    ),
}

COMMANDS: Final[dict[str, Lazy | Group]] = {
    "init": Lazy(
        "init_cmd", "Create the ledger: store, signing key (if missing) and genesis event."
    ),
    "verify-chain": Lazy(
        "verify_cmd",
        "Re-read every stored byte and report every finding (exit 1 when there are any).",
    ),
    "checkpoint": Lazy(
        "verify_cmd",
        "Write a signed C2SP checkpoint of the log as it is now (origin, size, head hash).",
    ),
    "verify-proof": Lazy(
        "prove_cmd",
        "Check a proof against a signed checkpoint and a verifier key, without the database.",
    ),
    "replay": Lazy(
        "replay_cmd",
        "Verify a bundle (signatures, chain, checkpoint, digests) and replay it into a store.",
    ),
    "demo": Lazy(
        "demo_cmd",
        "Run kei end to end on a throwaway ledger: append, tail, an agent tree with its "
        "costs, verify, tamper, catch.",
    ),
    "keys": Lazy("keys_cmd", "Create, list, export and revoke signing keys."),
    "prove": Lazy(
        "prove_cmd", "Prove an event is in the log, or that the log only grew since a checkpoint."
    ),
    "events": Group("Read the event log.", _EVENTS),
    "models": Lazy("models_cmd", "The model catalog: list, resolve, price, fallback chains."),
    "leaks": Lazy("leaks_cmd", "The leak matrix: scan text for secrets, list and test the rules."),
    "llm": Lazy("llm_cmd", "Local LLM backends: health, routing, recorded chat calls."),
    "machine": Lazy(
        "machine_cmd", "This machine: hardware, tooling, and the local models it can run."
    ),
    "memory": Lazy("memory_cmd", "What agents remember: write, query, search, forget."),
    "projections": Lazy("projections_cmd", "Read models built from the log."),
    "agent": Lazy("agent_cmd", "Agents: fork, finish, merge, and their lineage."),
    "cost": Lazy("cost_cmd", "Model-call costs: record, amend, report."),
    "budget": Lazy(
        "budget_cmd",
        "Spending limits per agent tree, session, project or all, and their thresholds.",
    ),
    "skill": Lazy("skill_cmd", "Skill invocations and their success metrics."),
    "import": Lazy("import_cmd", "Import other systems' histories into kei."),
    "migrate": Lazy(
        "migrate_cmd",
        "SQL migrations of a database (SQLite, PostgreSQL, MySQL), each change signed.",
    ),
    "hibernate": Lazy(
        "hibernate_cmd", "Bundles: the whole signed log in one file, to move or restore it."
    ),
    "retro": Lazy("retro_cmd", "Session retrospectives from ingested transcripts."),
    "route": Lazy("route_cmd", "Route tasks to the cheapest model good enough."),
    "posterior": Lazy("route_cmd", "The Beta posteriors the router learns."),
    "witness": Lazy("witness_cmd", "Cosign checkpoints of other ledgers (C2SP tlog-cosignature)."),
    "mcp": Lazy("mcp_cmd", "kei as an MCP server for agents (needs the mcp extra)."),
    "serve": Lazy("serve_cmd", "Serve kei's HTTP API (/v1, /openapi.json) until interrupted."),
    "notify": Lazy(
        "notify_cmd", "Notifications: rules, channels, and every send recorded as events."
    ),
    "net": Lazy(
        "net_cmd",
        "Network tunnels (WireGuard, IPsec, OpenVPN): intent, actions and peers as events.",
    ),
    "hook": Lazy("hook_cmd", "Record what an agent harness's hook call means."),
    "hooks": Lazy("hook_cmd", "Install or remove kei's hooks in an agent harness's settings."),
    "daemon": Lazy("daemon_cmd", "A warm process that makes kei commands start in milliseconds."),
    "tokens": Lazy("tokens_cmd", "API tokens for kei serve: create, revoke, list."),
}


class KeiGroup(LazyGroup):
    """The root group: its commands are :data:`COMMANDS`."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(table=COMMANDS, **attrs)


app = typer.Typer(
    name="kei",
    cls=KeiGroup,
    help="The tamper-evident memory of an AI-agent orchestrator.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,  # `kei --help` in click's plain layout: rich costs it 100 ms
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_HELP: Final = {g.field: g.help for g in GLOBALS}
_METAVAR: Final = {g.field: g.metavar for g in GLOBALS}


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(version_text() + "\n")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help=_HELP["db"], metavar=_METAVAR["db"])
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help=_HELP["key"], metavar=_METAVAR["key"])
    ] = None,
    synchronous: Annotated[
        str | None,
        typer.Option("--sqlite-sync", help=_HELP["synchronous"], metavar=_METAVAR["synchronous"]),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help=_HELP["verbose"])] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print kei's version and exit."
        ),
    ] = False,
) -> None:
    from kei.adapters.cli.global_options import Globals
    from kei.adapters.cli.output import route_warnings

    ctx.obj = Globals(db=db, key=key, synchronous=synchronous, verbose=verbose)
    route_warnings()  # a read model's skipped events, as `kei: WARNING:` lines


def main() -> None:
    """The typer app, run as ``kei`` (the console script is ``cli/entry.py``)."""
    from kei.adapters.cli.output import run

    run(app)
