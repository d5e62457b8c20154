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
from dataclasses import dataclass
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
    from kei.adapters.hooks.run import HookTarget, run_claude_hook

    g = globals_of(ctx)

    def target() -> HookTarget:
        s = g.settings()
        return HookTarget(s.home, s.db_url, s.key_path(), s.synchronous, s.retry)

    # KEI_HOME as config.resolve reads it, for a failure before the settings resolve
    fallback = Path(os.environ.get("KEI_HOME") or Path.home() / ".kei").expanduser()
    run_claude_hook(sys.stdin.buffer, target, fallback)


@hooks_app.command("install")
def install(
    ctx: typer.Context,
    harness: Harness,
    project: Project = None,
    user: User = False,
    as_json: JsonObject = False,
) -> None:
    """Merge kei's hook entries into the harness's settings, keeping every other entry."""
    from kei.adapters.hooks.settings import merged

    def change(settings: Settings) -> Settings:
        return merged(settings, _hook_command())

    verbs = ("installed kei's hooks in", "kei's hooks already in")
    _change_settings(ctx, _Where(harness, project, user), change, verbs, as_json=as_json)


@hooks_app.command("uninstall")
def uninstall(
    ctx: typer.Context,
    harness: Harness,
    project: Project = None,
    user: User = False,
    as_json: JsonObject = False,
) -> None:
    """Remove exactly kei's hook entries from the harness's settings."""
    from kei.adapters.hooks.settings import removed

    verbs = ("removed kei's hooks from", "no kei hooks in")
    _change_settings(ctx, _Where(harness, project, user), removed, verbs, as_json=as_json)


@dataclass(frozen=True, slots=True)
class _Where:
    """Which settings file ``--project``/``--user`` name for the harness."""

    harness: str
    project: Path | None
    user: bool


def _change_settings(
    ctx: typer.Context,
    where: _Where,
    change: Callable[[Settings], Settings],
    verbs: tuple[str, str],
    *,
    as_json: bool,
) -> None:
    """Install's and uninstall's one path: apply ``change`` to the settings file, then
    say what happened (``verbs``: when it changed, when the file already said so); with
    ``--json`` also as one object on stdout (``changed``: false in the second case)."""
    from kei.adapters.hooks.settings import update

    with handled(ctx):
        path = _settings_path(where.harness, where.project, where.user)
        changed = update(path, change)
        if as_json:
            json_line({"ok": True, "settings": str(path), "changed": changed})
        stderr().print(f"{verbs[0] if changed else verbs[1]} {path}", markup=False)


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
