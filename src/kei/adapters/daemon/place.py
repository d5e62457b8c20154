"""Where a daemon listens, and the checks that keep that place private.

One daemon per user and per kei installation: the socket's name is derived from the
Python environment (``sys.prefix``) and kei's package folder, so two virtual
environments never share a daemon. The folder must be a directory (not a link) owned by this user with no access
for anyone else; a client finding anything else ignores it and runs the command itself,
so a socket planted by another user never sees a command's environment or input.

Standard library only: the client imports this before anything else.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib

DIR_VARIABLE = "KEI_DAEMON_DIR"
MODE_VARIABLE = "KEI_DAEMON"
SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the terminating NUL


def package_dir() -> str:
    """kei's package folder, as this process imported it."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def daemon_dir(environ: dict[str, str] | os._Environ[str]) -> str:
    """``$KEI_DAEMON_DIR``, else ``$XDG_RUNTIME_DIR/kei``, else ``/tmp/kei-<uid>``."""
    chosen = environ.get(DIR_VARIABLE)
    if chosen:
        return os.path.abspath(chosen)
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "kei")
    return f"/tmp/kei-{os.getuid()}"


def _environment() -> str:
    """The Python environment and the copy of kei this process runs."""
    return f"{sys.prefix}\0{package_dir()}"


def install_id() -> str:
    """Eight hex digits naming :func:`_environment`."""
    return f"{zlib.crc32(_environment().encode()):08x}"


def socket_path(folder: str) -> str:
    return os.path.join(folder, f"{install_id()}.sock")


def lock_path(folder: str) -> str:
    return os.path.join(folder, f"{install_id()}.lock")


def log_path(folder: str) -> str:
    return os.path.join(folder, f"{install_id()}.log")


def private_problem(folder: str) -> str | None:
    """Why ``folder`` may not hold a daemon's socket, or None when it may."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        return f"cannot read {folder}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a directory"
    if info.st_uid != os.getuid():
        return f"{folder} belongs to uid {info.st_uid}, not to you (uid {os.getuid()})"
    if info.st_mode & 0o077:
        return f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o})"
    if len(os.fsencode(socket_path(folder))) > SUN_PATH_MAX:
        return f"{folder} is too long a path for a Unix socket"
    return None
