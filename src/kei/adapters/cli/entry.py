"""The ``kei`` console script. Two invocations answer before typer, rich or any
command module is imported: ``kei --version``, and ``kei hook claude-code`` exactly as
``kei hooks install`` writes it (Claude Code runs it on every tool call it hooks, so
its start-up is the agent's wait). Everything else goes to the typer app in
``cli/app.py``; ``kei hook claude-code`` with global options goes there too and runs
the same function."""

from __future__ import annotations

import sys


def version_text() -> str:
    from kei import __version__

    return f"kei {__version__}"


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        sys.stdout.write(version_text() + "\n")
        return
    if argv == ["hook", "claude-code"]:
        from kei.adapters.cli.global_options import Globals
        from kei.adapters.cli.hook_entry import claude_code

        claude_code(Globals())
        return
    from kei.adapters.cli.app import app
    from kei.adapters.cli.output import run

    run(app)
