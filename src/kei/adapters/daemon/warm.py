"""What the daemon does once so that each command's fork does not: imports, the command
tree, the leak table; and the snapshot that tells when the installed kei changed."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import threading

import typer
from msgspec import Struct
from typer._click.core import Command
from typer.core import TyperGroup

log = logging.getLogger(__name__)

# Never imported ahead: the entry points themselves.
NOT_AHEAD = ("kei.__main__", "kei.adapters.daemon.server")

Snapshot = dict[str, tuple[int, int]]  # path -> (mtime_ns, size)


class Warm(Struct):
    """The built ``kei`` command and the package files as they were when it was built."""

    command: Command
    files: Snapshot


def warm(package: str) -> Warm:
    """Import every kei module that imports (extras may be missing), build every
    command, load the shipped leak table; then the snapshot of ``package``'s files."""
    from kei.adapters.cli.app import app
    from kei.adapters.files.leaks import shipped_matrix

    command = typer.main.get_command(app)
    if isinstance(command, TyperGroup):
        _load_all(command)
    _import_all()
    shipped_matrix()
    if threading.active_count() > 1:  # a fork copies only the thread that forks
        log.warning("%d threads after warming; forks may inherit held locks",
                    threading.active_count())  # fmt: skip
    return Warm(command, snapshot(package))


def _load_all(group: TyperGroup) -> None:
    """Build each command of ``group`` and of its groups (they load on first lookup)."""
    commands = group.commands
    for name in list(commands):
        sub = commands[name]
        if isinstance(sub, TyperGroup):
            _load_all(sub)


def _import_all() -> None:
    import kei

    for module in pkgutil.walk_packages(kei.__path__, "kei."):
        if module.name in NOT_AHEAD:
            continue
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # an extra that is not installed: loaded on use instead
            log.debug("not imported ahead: %s (%s)", module.name, exc)


def snapshot(package: str) -> Snapshot:
    """Every file under ``package`` (bytecode caches aside) with its mtime and size."""
    files: Snapshot = {}
    for folder, dirs, names in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            files[path] = (info.st_mtime_ns, info.st_size)
    return files


def changed(files: Snapshot) -> str | None:
    """The first file that changed, appeared missing or was replaced, or None."""
    for path, seen in files.items():
        try:
            info = os.stat(path)
        except OSError:
            return path
        if (info.st_mtime_ns, info.st_size) != seen:
            return path
    return None
