"""The ``kei`` console script: ``kei --version`` answers before typer, rich or any
command is imported; everything else goes to the typer app in ``cli/app.py``."""

from __future__ import annotations

import sys


def version_text() -> str:
    from kei import __version__

    return f"kei {__version__}"


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(version_text() + "\n")
        return
    from kei.adapters.cli.app import app
    from kei.adapters.cli.output import run

    run(app)
