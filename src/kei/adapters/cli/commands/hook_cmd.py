"""``kei hook claude-code`` (one hook call recorded) and ``kei hooks install|uninstall
claude-code`` (kei's entries in Claude Code's settings).

The hook itself always exits 0 and prints nothing: its work and its failures are in
``kei.adapters.hooks.run``. Install and uninstall are ordinary commands: a settings
file kei cannot use is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from kei.adapters.cli.context import command_group, globals_of, handled, stderr
from kei.adapters.cli.options import JsonObject
from kei.adapters.cli.output import json_line
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.adapters.hooks.settings import Settings

hook_app, _register_hook = command_group("hook", "Record what an agent harness's hook call means.")
hooks_app, _register_hooks = command_group(
    "hooks", "Install or remove kei's hooks in an agent harness's settings."
)

Harness = Annotated[Literal["claude-code"], typer.Argument(help="The harness.", metavar="HARNESS")]
Project = Annotated[
    Path | None,
    typer.Option(
        "--project",
        metavar="DIR",
        help="The project whose .claude/settings.json to change (default: .).",
    ),
]
User = Annotated[bool, typer.Option("--user", help="Change ~/.claude/settings.json instead.")]


def register(app: typer.Typer) -> None:
    _register_hook(app)
    _register_hooks(app)


@hook_app.command("claude-code")
def claude_code(ctx: typer.Context) -> None:
    """Record one Claude Code hook payload read on stdin; always exits 0.

    Task/Agent calls fork, finish or fail subagents; Stop closes the session's root.

    What could not be recorded is one line in $KEI_HOME/hook.log.
    """
    from kei.adapters.cli.hook_entry import claude_code as record

    record(globals_of(ctx))


def _install(settings: Settings) -> Settings:
    from kei.adapters.hooks.settings import merged

    return merged(settings, _hook_command())


def _uninstall(settings: Settings) -> Settings:
    from kei.adapters.hooks.settings import removed

    return removed(settings)


def _settings_command(
    name: str, change: Callable[[Settings], Settings], verbs: tuple[str, str], doc: str
) -> None:
    """Add ``kei hooks NAME``: install and uninstall take the same arguments and differ
    only in the ``change`` they make to the settings file and the ``verbs`` that say
    what happened (when it changed; when the file already said so)."""

    def command(
        ctx: typer.Context,
        harness: Harness,
        project: Project = None,
        user: User = False,
        as_json: JsonObject = False,
    ) -> None:
        from kei.adapters.hooks.settings import update

        with handled(ctx):
            path = _settings_path(harness, project, user)
            changed = update(path, change)
            if as_json:  # ``changed``: false when the file already said so
                json_line({"ok": True, "settings": str(path), "changed": changed})
            stderr().print(f"{verbs[0] if changed else verbs[1]} {path}", markup=False)

    command.__doc__ = doc
    hooks_app.command(name)(command)


_settings_command(
    "install",
    _install,
    ("installed kei's hooks in", "kei's hooks already in"),
    "Merge kei's hook entries into the harness's settings, keeping every other entry.",
)
_settings_command(
    "uninstall",
    _uninstall,
    ("removed kei's hooks from", "no kei hooks in"),
    "Remove exactly kei's hook entries from the harness's settings.",
)


def _settings_path(harness: str, project: Path | None, user: bool) -> Path:
    if user and project is not None:
        raise InputError("--project and --user both given", hint="choose one")
    if user:
        home = os.environ.get("HOME")
        return (Path(home) if home else Path.home()) / ".claude" / "settings.json"
    base = project if project is not None else Path.cwd()
    if not base.is_dir():
        raise InputError(f"--project {base} is not a folder", hint="name the project's root")
    return base.absolute() / ".claude" / "settings.json"


def _hook_command() -> str:
    """How Claude Code should start this kei: the ``kei`` script beside this Python when
    there is one, else this Python with ``-m kei`` (never a bare ``kei`` from PATH, which
    may be another install or none in the harness's environment)."""
    script = Path(sys.executable).parent / "kei"
    found = shutil.which("kei")
    if script.is_file() and os.access(script, os.X_OK):
        return f"{shlex.quote(str(script))} hook claude-code"
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return f"{shlex.quote(found)} hook claude-code"
    return f"{shlex.quote(sys.executable)} -m kei hook claude-code"
