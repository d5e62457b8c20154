"""Reading a zstd-compressed tar someone else wrote, without trusting a byte of it.

kei reads two kinds of such archives: its own bundles (``kei replay``, ``kei hibernate
inspect``: ``app/bundle/reader.py``) and upstream kei-hibernate bundles (``kei import
kei-hibernate``: ``app/importers/hibernate_bundle.py``). Both read through here, so a
hardening made once holds for both. The ``kind`` of the ``BundleError`` is in brackets:

- the file must be a whole number of complete zstd frames, which the frame and block
  headers tell before a byte is decompressed (``frame_problem``), so a file cut
  anywhere, even inside the final checksum, is refused up front [format, truncated];
- a zstd frame need not declare its content size, so nothing is trusted up front:
  ``CappedStream`` counts the bytes decompressed and refuses as soon as the output
  passes its allowance: ``LIMITS.max_archive_bytes`` (64 GiB, beyond any real bundle),
  or less once the caller knows the size the archive declares (``allow``); the error
  names the limit it hit. There is no expansion-ratio cap: a legitimate file of zeros
  compresses 10,000 to 1, so a ratio refuses real bundles and stops no bomb a total
  cap does not. The decompressor's window is capped too, so a frame cannot claim
  gigabytes of memory [bomb, damaged];
- nothing is extracted to the file system: ``TarReader`` hands out each entry as a
  byte stream, and refuses an entry that is not a regular file (a symbolic or hard
  link [link]; a device, FIFO, or a folder where the caller allows none [special]),
  whose name is absolute or climbs out with ``..`` (``unsafe_path``) [unsafe-path], or
  that appears twice [duplicate].
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import IO, cast

import zstandard
from msgspec import Struct

from kei.errors import BundleError
from kei.limits import LIMITS

CHUNK = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)
_FCS_SIZES = (0, 2, 4, 8)
_DID_SIZES = (0, 1, 2, 4)
_DRIVE = re.compile(r"[A-Za-z]:")
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


class ArchiveLimits(Struct, frozen=True):
    """What any archive kei reads may decompress to (``CappedStream``).

    One set for kei bundles and upstream kei-hibernate bundles, read from the one
    frozen limits value (``kei.limits.LIMITS``); a test passes smaller ones.
    """

    max_bytes: int = LIMITS.max_archive_bytes
    max_window_bytes: int = LIMITS.max_archive_window_bytes
    slack_bytes: int = LIMITS.archive_slack_bytes


def frame_problem(raw: IO[bytes], size: int) -> str | None:
    """Why the file is not a whole number of complete zstd frames, or None.

    Walks the frame and block headers only (seeking over block contents), so a file
    cut anywhere, even inside the final checksum, is known before a byte of it is
    decompressed. Layout per RFC 8878 §3.1.
    """
    pos = 0
    while pos < size:
        raw.seek(pos)
        head = raw.read(4)
        if len(head) < 4:
            return f"it ends inside a frame header at byte {pos}"
        magic = int.from_bytes(head, "little")
        if magic in _SKIPPABLE:
            length = raw.read(4)
            if len(length) < 4:
                return f"it ends inside a frame header at byte {pos}"
            pos += 8 + int.from_bytes(length, "little")
        elif head == _ZSTD_MAGIC:
            end = _frame_end(raw, pos + 4, size)
            if isinstance(end, str):
                return end
            pos = end
        else:
            return f"byte {pos} does not start a zstd frame"
    return None if pos == size else f"its last frame runs past the end ({pos} > {size})"


def _frame_end(raw: IO[bytes], pos: int, size: int) -> int | str:
    """The offset just after the zstd frame whose header starts at ``pos``."""
    fhd = raw.read(1)
    if not fhd:
        return "it ends inside a frame header"
    flags = fhd[0]
    single = (flags >> 5) & 1
    fcs = _FCS_SIZES[flags >> 6] or (1 if single else 0)
    pos += 1 + (0 if single else 1) + _DID_SIZES[flags & 3] + fcs
    while True:
        raw.seek(pos)
        header = raw.read(3)
        if len(header) < 3:
            return f"it ends inside a block header at byte {pos}: the bundle is cut short"
        value = int.from_bytes(header, "little")
        last, kind, length = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            return f"a block at byte {pos} has the reserved type"
        pos += 3 + (1 if kind == 1 else length)
        if last:
            pos += 4 if flags & 4 else 0
            return pos if pos <= size else f"its last block runs past the end ({pos} > {size})"
        if pos > size:
            return f"a block runs past the end ({pos} > {size}): the bundle is cut short"


class CappedStream:
    """A read-only file of the decompressed archive that never yields more than allowed.

    ``label`` names what the file should have been, for the one refusal that cannot
    say more ("not a kei bundle").
    """

    def __init__(self, raw: IO[bytes], limits: ArchiveLimits, label: str) -> None:
        head = raw.read(4)
        if head != _ZSTD_MAGIC:
            raise BundleError(f"the file is not zstd-compressed: not a {label}", kind="format")
        problem = frame_problem(raw, raw.seek(0, 2))
        if problem is not None:
            raise BundleError(f"the bundle is damaged or truncated: {problem}", kind="truncated")
        raw.seek(0)
        dctx = zstandard.ZstdDecompressor(max_window_size=limits.max_window_bytes)
        self._reader = dctx.stream_reader(raw, read_across_frames=True)
        self._limits = limits
        self.allowed = limits.max_bytes
        self.declared: int | None = None
        self.out = 0

    def allow(self, total: int, *, declared: int | None = None) -> None:
        """Cap the stream at ``total`` bytes (never above ``max_bytes``); ``declared`` is
        the archive size the manifest declares, once it is known."""
        self.allowed = min(total, self._limits.max_bytes)
        self.declared = declared

    def read(self, n: int = -1) -> bytes:
        want = self.allowed - self.out + 1 if n < 0 else n
        try:
            data = self._reader.read(want)
        except zstandard.ZstdError as exc:
            raise BundleError(f"the compressed stream is damaged ({exc})", kind="damaged") from exc
        self.out += len(data)
        if self.out > self.allowed:
            raise BundleError(
                f"the bundle decompresses beyond {self._limit()}: refused as a zstd bomb",
                kind="bomb",
            )
        return data

    def _limit(self) -> str:
        """Which limit the output passed, in words."""
        if self.allowed >= self._limits.max_bytes:
            return (
                f"{self.allowed} bytes ({self.allowed / (1 << 30):g} GiB), the limit on any "
                "archive kei reads (max_archive_bytes in kei.limits), which no real bundle reaches"
            )
        if self.declared is None:
            return f"{self.allowed} bytes before its manifest, the most a manifest may take"
        return (
            f"{self.allowed} bytes: its manifest declares {self.declared}, and the reader "
            f"allows {self.allowed - self.declared} more"
        )

    def drain(self) -> int:
        """Read what is left (bounded by the allowance); how many bytes that was."""
        left = 0
        while chunk := self.read(1 << 16):
            left += len(chunk)
        return left

    def close(self) -> None:
        self._reader.close()  # type: ignore[no-untyped-call]


def unsafe_path(name: str) -> str | None:
    """Why the entry name ``name`` could reach outside the folder an archive is read
    into, or None: empty, a NUL byte, absolute (``/x``, ``C:x``), climbing out with
    ``..``, or a backslash or empty part that readers may take differently."""
    if not name:
        return "empty name"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "path climbs out with '..'"
    if "\\" in name or "" in parts:
        return "path is not in canonical form"
    if "\x00" in name:
        return "path has a NUL byte"
    return None


def entry_error(kind: str, name: str, detail: str) -> BundleError:
    """The refusal of the archive entry ``name``: "bundle entry 'name' <detail>"."""
    return BundleError(f"bundle entry {name!r} {detail}", kind=kind, entry=name)


class TarReader:
    """The entries of a zstd-compressed tar, read once, front to back, never extracted.

    ``refusal`` checks an entry (type, name by ``name_rule``, not seen before) without
    recording it; ``accept`` records a name the caller takes. ``folders``: folder
    entries pass (their names checked), as upstream tars list their folders.
    ``allow``: the first cap on the stream, set before the first header is read.
    """

    def __init__(
        self,
        raw: IO[bytes],
        limits: ArchiveLimits,
        *,
        label: str,
        name_rule: Callable[[str], str | None] = unsafe_path,
        folders: bool = False,
        allow: int | None = None,
    ) -> None:
        self.stream = CappedStream(raw, limits, label)
        if allow is not None:
            self.stream.allow(allow)
        self.seen: set[str] = set()
        self._name_rule = name_rule
        self._folders = folders
        try:
            self._tar = tarfile.open(fileobj=cast(IO[bytes], self.stream), mode="r|")  # noqa: SIM115
        except (tarfile.TarError, EOFError) as exc:
            self.stream.close()
            raise BundleError(f"the bundle is not a tar archive ({exc})", kind="damaged") from exc
        except BaseException:
            self.stream.close()
            raise

    def close(self) -> None:
        self.stream.close()

    def next(self) -> tarfile.TarInfo | None:
        """The next entry's header, or None at the end of the archive."""
        try:
            member: tarfile.TarInfo | None = self._tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _broken(exc) from exc
        return member

    def refusal(self, member: tarfile.TarInfo) -> BundleError | None:
        """Why ``member`` may not be read, or None."""
        name = member.name
        if member.issym() or member.islnk():
            what = "a symbolic link" if member.issym() else "a hard link"
            return entry_error(
                "link", name, f"is {what} (to {member.linkname!r}), not a regular file"
            )
        if member.type not in _REGULAR and not (self._folders and member.isdir()):
            return entry_error("special", name, f"is {_kind(member)}, not a regular file")
        why = self._name_rule(name)
        if why is not None:
            return entry_error("unsafe-path", name, f"has an unsafe path: {why}")
        if not member.isdir() and key(name) in self.seen:
            return entry_error("duplicate", name, "appears twice")
        return None

    def accept(self, name: str) -> None:
        """Record the entry ``name`` as read: it may not appear again."""
        self.seen.add(key(name))

    def chunks(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        """The content of the current entry ``member``, in chunks."""
        data = self._tar.extractfile(member)
        if data is None:
            raise entry_error("special", member.name, "has no content")
        try:
            while chunk := data.read(CHUNK):
                yield chunk
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _broken(exc) from exc


def key(name: str) -> str:
    """The name an entry is known by: ``./a`` and ``a`` are one entry."""
    return str(PurePosixPath(name))


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a fifo"
    if member.isdir():
        return "a directory"
    return f"of tar type {member.type!r}"


def _broken(exc: BaseException) -> BundleError:
    if isinstance(exc, BundleError):
        return exc
    text = str(exc) or type(exc).__name__
    if "unexpected end" in text or isinstance(exc, EOFError):
        return BundleError(f"the bundle is truncated ({text})", kind="truncated")
    return BundleError(f"the bundle's archive is damaged ({text})", kind="damaged")
