"""What a writer keeps beside its output, and what a killed one leaves there.

A command that writes a file the user names (``safe_output.OutputFile``) writes it
first under a temporary name beside it, and some keep a private folder of scratch
files there too (``private_folder``). A writer killed outright (SIGKILL, power loss)
cannot clean up, so each temporary file and private folder is held under an advisory
lock (``flock``) while its writer lives, and the next writer to the same name first
removes (``sweep``) those whose lock no process holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HELD = ".held"  # the lock file inside a private folder


def held_temp(target: Path) -> tuple[Path, int]:
    """A new file ``.<name>.<random>.tmp`` beside ``target`` (the name cut so the whole
    stays within the system's limit), held locked while its descriptor is open, after
    sweeping what killed writers left; its path and descriptor. OSError is the caller's."""
    sweep(target)
    while True:
        tmp = target.with_name(f".{_stem(target)}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else holds it
        return tmp, fd


@contextlib.contextmanager
def private_folder(target: Path) -> Iterator[Path]:
    """A folder of scratch files beside ``target`` (``.<name>.<random>``), held locked
    while in use and removed whatever happens; one a killed writer left is removed by
    the next ``sweep``. OSError (a full disk) is the caller's."""
    sweep(target)
    with tempfile.TemporaryDirectory(prefix=f".{_stem(target)}.", dir=target.parent) as name:
        folder = Path(name)
        fd = os.open(folder / _HELD, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield folder
        finally:
            os.close(fd)


def sweep(target: Path) -> None:
    """Remove what writers killed outright left beside ``target``: temporary files and
    private folders of its name whose lock no process holds."""
    prefix = f".{_stem(target)}."
    tmp = re.compile(re.escape(prefix) + r"[0-9a-f]{12}\.tmp")
    try:
        entries = [e for e in os.scandir(target.parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        if tmp.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            if _unheld(path):
                with contextlib.suppress(OSError):
                    path.unlink()
        elif entry.is_dir(follow_symlinks=False) and _unheld(path / _HELD):
            shutil.rmtree(path, ignore_errors=True)


def _stem(target: Path) -> str:
    return target.name[:64]


def _unheld(path: Path) -> bool:
    """Whether no live process holds ``path``'s lock (its writer died)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
