"""``kei demo``: kei end to end on a throwaway ledger, in a few seconds.

It never touches the user's ledger or keys: everything lives in a fresh temporary
folder (or ``--keep DIR``), resolved from an explicit environment, ignoring ``--db``,
``--key`` and ``KEI_*``. The steps live in ``demo/``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kei.adapters.cli.context import handled
from kei.adapters.cli.demo.run import DemoRun
from kei.adapters.cli.demo.steps import STEPS
from kei.errors import InputError


def run_demo(folder: Path, out: Console, *, kept: bool = False) -> DemoRun:
    """Run every step in ``folder``; the ledger is closed afterwards."""
    run = DemoRun(folder=folder, out=out, kept=kept)
    try:
        for step in STEPS:
            step(run)
    finally:
        if run.ledger is not None:
            run.ledger.close()
    return run


def _keep_folder(path: Path) -> Path:
    path = path.expanduser().absolute()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path} is not an empty folder", hint="pass a new or empty --keep DIR")
    path.mkdir(parents=True, exist_ok=True)
    return path


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        keep: Annotated[
            Path | None,
            typer.Option(
                "--keep", metavar="DIR", help="Keep the demo ledger and keys in this new folder."
            ),
        ] = None,
    ) -> None:
        """Run kei end to end on a throwaway ledger: append, tail, an agent tree with its
        costs, verify, tamper, catch."""
        with handled(ctx):
            out = Console(highlight=False, soft_wrap=True)
            if keep is not None:
                folder = _keep_folder(keep)
                out.print(f"kei demo in {folder} (kept)", markup=False)
                run_demo(folder, out, kept=True)
                return
            with tempfile.TemporaryDirectory(prefix="kei-demo-") as tmp:
                out.print(f"kei demo in {tmp} (a throwaway folder)", markup=False)
                run_demo(Path(tmp), out)
