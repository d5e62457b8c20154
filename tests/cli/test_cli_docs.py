"""Every command, subcommand and option of ``kei`` has help and appears in docs/cli.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer._click.core import Command
from typer.core import TyperGroup

from kei.adapters.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def walk(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Command]]:
    """Yield ``("kei keys new", command)`` for every command below ``command``."""
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        full = (*path, name)
        yield "kei " + " ".join(full), sub
        if isinstance(sub, TyperGroup):
            yield from walk(sub, full)


COMMANDS = list(walk(typer.main.get_command(app)))


def test_the_walk_finds_the_known_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"kei init", "kei keys new", "kei events tail", "kei demo"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_is_documented(name: str, command: Command) -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert name in doc, f"{name} is missing from docs/cli.md"
    assert command.help, f"{name} has no help text"
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert opt in doc, f"{name} {opt} is missing from docs/cli.md"


def test_global_options_and_environment_are_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    for param in root.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert opt in doc
    for var in ("KEI_HOME", "KEI_DB", "KEI_KEY", "KEI_SQLITE_SYNCHRONOUS"):
        assert var in doc
