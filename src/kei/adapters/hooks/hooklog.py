"""``$KEI_HOME/hook.log``: one line per hook call that could not record what it meant.

A hook must never fail its agent, so its failures go here rather than to an exit
code. The file is bounded: past ``MAX_LOG_BYTES`` it is moved to ``hook.log.1``
(replacing the previous one) and started again, so at most twice that is kept.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

MAX_LOG_BYTES: Final = 1 << 20
MAX_LINE_CHARS: Final = 1000
LOG_NAME: Final = "hook.log"


def log_failure(home: Path, where: str, message: str) -> None:
    """Append one line ``<UTC time> <where>: <message>``; errors writing it are swallowed
    (there is nowhere left to report them without blocking the agent)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = " ".join(f"{where}: {message}".split())  # one line, whatever the message held
    line = f"{stamp} {text[:MAX_LINE_CHARS]}\n"
    path = home / LOG_NAME
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        _rotate(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)
    except OSError:
        pass


def _rotate(path: Path) -> None:
    try:
        if path.stat().st_size >= MAX_LOG_BYTES:
            os.replace(path, path.with_name(LOG_NAME + ".1"))
    except FileNotFoundError:
        pass
