"""The ``kei`` console script. ``kei --version`` answers before anything is imported.
Then a running daemon (``kei daemon start``) gets the command: it runs it in a fork of
a process that has imported everything already (``adapters/daemon``). Otherwise, here:
``kei hook claude-code`` exactly as ``kei hooks install`` writes it runs before typer,
rich or any command module is imported (Claude Code runs it on every tool call it
hooks, so its start-up is the agent's wait); everything else goes to the typer app in
``cli/app.py``, where ``kei hook claude-code`` with global options runs the same
function."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: see kei/__init__.py
if TYPE_CHECKING:
    from typer._click.core import Command


def version_text() -> str:
    from kei import __version__

    return f"kei {__version__}"


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        sys.stdout.write(version_text() + "\n")
        return
    from kei.adapters.daemon.client import run as run_in_daemon

    code = run_in_daemon(argv)
    if code is not None:
        sys.exit(code)
    dispatch(argv)


def dispatch(argv: list[str], command: Command | None = None) -> None:
    """Run ``kei argv`` in this process (``command``: the root already built, as the
    daemon has it); exits through ``SystemExit`` except after the bare hook."""
    if argv == ["hook", "claude-code"]:
        from kei.adapters.cli.global_options import Globals
        from kei.adapters.cli.hook_entry import claude_code

        claude_code(Globals())
        return
    from kei.adapters.cli.app import app
    from kei.adapters.cli.output import run

    run(app, argv, command)
