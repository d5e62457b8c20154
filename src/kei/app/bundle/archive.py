"""The deterministic writer: a USTAR tar, streamed through one zstd frame, to a file.

Exporting the same log twice gives the same bytes, because nothing in the archive
depends on the machine's state: entries are added in name order by the caller, and
every header is fixed (mode 0644, uid and gid 0, no user or group names, mtime 0,
USTAR format, so no PAX or GNU extension records). The tar is laid out exactly as
Python's ``tarfile`` lays it out (the header ``TarInfo.tobuf`` makes, the data padded
to 512 bytes, two zero blocks, padding to 10,240), but written here in large chunks:
``tarfile``'s stream mode copies 16 KiB at a time, which costs more Python calls than
the data is worth.

zstd runs in its multi-threaded mode (``THREADS`` workers beside this thread), so
compression overlaps the reading of the spooled segments and uses every core. Its
output is still one frame, deterministic for a given level and the same for any
number of workers from 1 up (zstd's streaming multi-threaded mode is built to be,
and ``tests/bundle/test_export_speed_archive.py`` checks it; only 0 workers lays the frame
out differently), so the bytes do not depend on the machine's cores. The frame carries a
checksum. The file is written beside its destination and put in place only when
complete (fsync first; ``safe_output.OutputFile``, which never replaces the store, a
key, a device or, without ``force``, an existing file), so a failed or killed export
never leaves a partial bundle under the destination's name.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path
from typing import IO

import zstandard

from kei.adapters.files.safe_output import OutputFile, Protected, aborting, write_error
from kei.errors import InputError

MIN_LEVEL = 1
MAX_LEVEL = 19
THREADS = max(1, min(4, os.cpu_count() or 1))
CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


class BundleWriter:
    """Add entries with ``add``; ``commit`` renames the finished file into place."""

    def __init__(
        self,
        out: Path,
        *,
        level: int = 3,
        threads: int = THREADS,
        force: bool = False,
        protected: Protected = Protected(),
    ) -> None:
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise InputError(f"zstd level must be {MIN_LEVEL}..{MAX_LEVEL}, got {level}")
        self._file = OutputFile(out, protected, force=force)
        self.out = self._file.target
        self._fh: IO[bytes] = self._file.fh
        compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, threads=max(1, threads)
        )
        self._zstd = compressor.stream_writer(self._fh, closefd=False)
        self._offset = 0

    def add(self, name: str, size: int, data: IO[bytes]) -> None:
        """Append the file ``name`` of ``size`` bytes read from ``data``."""
        self._write(_header(name, size))
        left = size
        while left > 0:
            chunk = data.read(min(CHUNK, left))
            if not chunk:
                raise InputError(f"cannot write {self.out}: {name} ended {left} bytes early")
            self._write(chunk)
            left -= len(chunk)
        self._write(bytes(-size % _BLOCK))

    def _write(self, data: bytes) -> None:
        if data:
            try:
                self._zstd.write(data)
            except OSError as exc:
                raise write_error(self.out, exc) from None
            self._offset += len(data)

    def _finish_tar(self) -> None:
        """Two zero blocks, then zeros up to a whole record (as ``tarfile`` closes)."""
        self._write(bytes(2 * _BLOCK))
        self._write(bytes(-self._offset % _RECORD))

    def commit(self) -> int:
        """Finish the archive, make it durable, move it into place; its size in bytes."""
        with aborting(self.abort, self.out):
            self._finish_tar()
            self._zstd.close()  # type: ignore[no-untyped-call]  # ends the one frame
        return self._file.commit()

    def abort(self) -> None:
        """Drop the unfinished file."""
        with contextlib.suppress(Exception):
            self._zstd.close()  # type: ignore[no-untyped-call]
        self._file.abort()


def _header(name: str, size: int) -> bytes:
    """The USTAR header ``tarfile`` writes for a regular file with the fixed fields."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
