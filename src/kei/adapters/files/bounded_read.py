"""Reading files a user names (an export to import, a transcript to ingest) without
trusting them: only regular files are opened (``/dev/zero``, a FIFO or a folder would
block or never end), and no line may grow past a bound, so a file without newlines
cannot fill the memory. Every refusal is an :class:`InputError` naming the file.

A small file read whole (a checkpoint, a proof, a settings file) is read no further
than one byte past its bound (:func:`read_at_most`), so an oversized one is told
apart without reading the rest."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from kei.errors import InputError
from kei.limits import LIMITS


def open_regular(path: Path, *, hint: str | None = None) -> IO[bytes]:
    """``path`` opened for reading, refused unless it is a regular file.

    Opened non-blocking first, so naming a FIFO does not hang before the check."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {_shown(path)}: {_why(exc)}", hint=hint) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{_shown(path)} is not a regular file", hint=hint)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_at_most(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``, at most ``max_bytes + 1`` of them: more than ``max_bytes``
    means the file is too big. An OSError is the caller's to word."""
    with path.open("rb") as fh:
        return fh.read(max_bytes + 1)


def bounded_lines(
    handle: IO[bytes], source: str, max_bytes: int = LIMITS.max_line_bytes
) -> Iterator[bytes]:
    """The lines of ``handle`` (newline kept), refusing one longer than ``max_bytes``."""
    number = 0
    while line := handle.readline(max_bytes + 1):
        number += 1
        if len(line) > max_bytes:
            raise InputError(
                f"{source}: line {number} is longer than {max_bytes} bytes",
                hint="give a file of JSON lines",
            )
        yield line


def _shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else f"{text[:100]}...{text[-40:]}"


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    return exc.strerror or str(exc)
