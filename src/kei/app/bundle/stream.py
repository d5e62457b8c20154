"""The decompressed byte stream of a bundle, bounded against zstd bombs.

A zstd frame need not declare its content size, so nothing is trusted up front:
``CappedStream`` counts the compressed bytes read from the file and the bytes
decompressed from them, and refuses (``BundleError`` kind ``bomb``) as soon as the
output passes its allowance (``allow``: first the manifest's bound, then the exact
archive size the manifest declares) or, past a grace amount, the ratio limit. The
decompressor's window is capped too, so a frame cannot claim gigabytes of memory.
"""

from __future__ import annotations

from typing import IO, cast

import zstandard

from kei.app.bundle.layout import BundleError, BundleLimits

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)
_FCS_SIZES = (0, 2, 4, 8)
_DID_SIZES = (0, 1, 2, 4)


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


class _Counting:
    """The raw file, counting the compressed bytes handed to the decompressor."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data


class CappedStream:
    """A read-only file of the decompressed archive that never yields more than allowed."""

    def __init__(self, raw: IO[bytes], limits: BundleLimits) -> None:
        head = raw.read(4)
        if head != _ZSTD_MAGIC:
            raise BundleError("the file is not zstd-compressed: not a kei bundle", kind="format")
        problem = frame_problem(raw, raw.seek(0, 2))
        if problem is not None:
            raise BundleError(f"the bundle is truncated or damaged: {problem}", kind="truncated")
        raw.seek(0)
        self._raw = _Counting(raw)
        dctx = zstandard.ZstdDecompressor(max_window_size=limits.max_window_bytes)
        source = cast(IO[bytes], self._raw)
        self._reader = dctx.stream_reader(source, read_across_frames=True)
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
            declared = "" if self.declared is None else f" (its manifest declares {self.declared})"
            raise BundleError(
                f"the bundle decompresses to more than {self.allowed} bytes{declared}: "
                "refused as a decompression bomb",
                kind="bomb",
            )
        limits = self._limits
        if self.out > limits.ratio_grace and self.out > limits.max_ratio * self._raw.count:
            raise BundleError(
                f"the bundle expands more than {limits.max_ratio} times ({self.out} bytes "
                f"from {self._raw.count}): refused as a decompression bomb",
                kind="bomb",
            )
        return data

    def drain(self) -> int:
        """Read what is left (bounded by the allowance); how many bytes that was."""
        left = 0
        while chunk := self.read(1 << 16):
            left += len(chunk)
        return left

    def close(self) -> None:
        self._reader.close()  # type: ignore[no-untyped-call]
