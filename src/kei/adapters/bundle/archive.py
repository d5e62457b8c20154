"""The deterministic writer: a USTAR tar, streamed through one zstd frame, to a file.

Exporting the same log twice gives the same bytes, because nothing in the archive
depends on the machine's state: entries are added in name order by the caller, and
every header is fixed (mode 0644, uid and gid 0, no user or group names, mtime 0,
USTAR format, so no PAX or GNU extension records). zstd is deterministic for a given
level; the frame carries a checksum. The file is written beside its destination and
renamed into place only when complete (fsync first), so a failed or killed export
never leaves a partial bundle under the destination's name.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path
from typing import IO

import zstandard

from kei.errors import InputError

MIN_LEVEL = 1
MAX_LEVEL = 19


class BundleWriter:
    """Add entries with ``add``; ``commit`` renames the finished file into place."""

    def __init__(self, out: Path, *, level: int = 3) -> None:
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise InputError(f"zstd level must be {MIN_LEVEL}..{MAX_LEVEL}, got {level}")
        self.out = out
        self._tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            self._fh: IO[bytes] = self._tmp.open("xb")
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from exc
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._zstd = compressor.stream_writer(self._fh, closefd=False)
        self._tar = tarfile.open(  # noqa: SIM115 - closed by commit
            fileobj=self._zstd, mode="w|", format=tarfile.USTAR_FORMAT
        )

    def add(self, name: str, size: int, data: IO[bytes]) -> None:
        """Append the file ``name`` of ``size`` bytes read from ``data``."""
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        self._tar.addfile(info, data)

    def commit(self) -> int:
        """Finish the archive, make it durable, move it into place; its size in bytes."""
        try:
            self._tar.close()
            self._zstd.flush(zstandard.FLUSH_FRAME)
            self._zstd.close()  # type: ignore[no-untyped-call]
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.out)
            _fsync_dir(self.out.parent)
        except OSError as exc:
            self.abort()
            raise InputError(f"cannot write {self.out}: {exc.strerror or exc}") from exc
        return self.out.stat().st_size

    def abort(self) -> None:
        """Drop the unfinished file."""
        for close in (self._zstd.close, self._fh.close):
            with contextlib.suppress(Exception):
                close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
