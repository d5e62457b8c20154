"""Scratch folders that a killed run leaves behind are removed by the next run.

A scratch folder is named ``.kei-scratch-<purpose>-<pid>-<random>`` and holds an
``owner`` file with its process's id, start time and process-id namespace. A process killed with SIGKILL
cannot remove its folder; the next kei run that makes a scratch folder in the same
place (``make``) first removes (``sweep``) every such folder whose owner is gone:

- the owner is alive when a process with its id runs and, where the system tells
  (Linux's ``/proc``), started at the recorded time (an id reused by another process
  does not keep a folder);
- a folder of another user, a symlink, or a name that is not kei's is never touched,
  nor one whose owner is alive or cannot be checked: no permission to signal it,
  another process-id namespace (a container sharing the folder), or no ``owner``
  file yet in a folder made in the last ``YOUNG_S`` seconds (its owner is starting).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)
PREFIX: Final = ".kei-scratch-"
OWNER_FILE: Final = "owner"
_NAME: Final = re.compile(r"\.kei-scratch-[a-z]+-(\d+)-")
YOUNG_S: Final = 60.0


def make(folder: Path | None, purpose: str) -> tempfile.TemporaryDirectory[str]:
    """A new scratch folder in ``folder`` (or the system's temporary folder), after
    removing the stale ones there; raises OSError when it cannot be created."""
    base = folder or Path(tempfile.gettempdir())
    sweep(base)
    pid = os.getpid()
    tmp = tempfile.TemporaryDirectory(prefix=f"{PREFIX}{purpose}-{pid}-", dir=base)
    try:
        owner = f"{pid} {start_time(pid) or '-'} {pid_namespace() or '-'}\n"
        (Path(tmp.name) / OWNER_FILE).write_text(owner)
    except OSError:
        tmp.cleanup()
        raise
    return tmp


def sweep(folder: Path) -> list[Path]:
    """Remove the scratch folders in ``folder`` whose owner is gone; returns them."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        if _is_stale(entry):
            shutil.rmtree(entry.path, ignore_errors=True)
            if not os.path.lexists(entry.path):
                log.info("removed the scratch folder of a run that is gone: %s", entry.path)
                removed.append(Path(entry.path))
    return removed


def _is_stale(entry: os.DirEntry[str]) -> bool:
    match = _NAME.match(entry.name)
    try:
        if not match or not entry.is_dir(follow_symlinks=False):
            return False
        if entry.stat(follow_symlinks=False).st_uid != os.getuid():
            return False
    except OSError:
        return False
    pid = int(match.group(1))
    owner = _owner(Path(entry.path))
    if owner is None:  # not written yet (the owner is starting), or unreadable
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return False
        return age > YOUNG_S and not alive(pid, None)
    started, namespace = owner
    if namespace is not None and namespace != pid_namespace():
        return False
    return not alive(pid, started)


def _owner(folder: Path) -> tuple[str | None, str | None] | None:
    """(start time, pid namespace) from the ``owner`` file; None without one."""
    try:
        fields = (folder / OWNER_FILE).read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    known = [None if f == "-" else f for f in fields[1:3]]
    known += [None] * (2 - len(known))
    return known[0], known[1]


def alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` runs and, when ``started`` is known, is the one that
    started then (a reused pid is not it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process: not ours to judge
    now = start_time(pid)
    return started is None or now is None or now == started


def pid_namespace() -> str | None:
    """This process's process-id namespace (Linux), else None."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None
