"""Segment files: stored rows, framed so they can be read back a chunk at a time.

A segment is a sequence of frames, one per event, in position order::

    u32 length (big-endian) ‖ msgpack array of 8:
        [position, stream (bin), version, type (bin), state (bin), seq, prev_hash (bin), hash (bin)]

which is exactly the verifier's raw ``Row`` (``kei.domain.log.verify``): stream and type
as the UTF-8 bytes stored, state, prev_hash and hash verbatim. Decoding is typed
(msgspec), so a frame of the wrong shape is refused, never half-read; a frame over
the size limit or a segment ending inside a frame is refused too.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec

from kei.errors import BundleError

RowTuple = tuple[int, bytes, int, bytes, bytes, int, bytes, bytes]

_LEN: Final = struct.Struct(">I")
_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(RowTuple).decode


def encode_frame(row: tuple[Any, ...]) -> bytes:
    """One stored row as one frame."""
    body = _ENCODE(row)  # msgspec writes bytes and memoryview alike, as msgpack bin
    return _LEN.pack(len(body)) + body


def encode_frames(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """The frames of ``rows``, concatenated: ``encode_frame`` per row, but with every
    per-row step (encode, length, prefix, join) run by a C-level ``map``, since export
    frames a million rows."""
    bodies = list(map(_ENCODE, rows))
    prefixes = map(_LEN.pack, map(len, bodies))
    return b"".join(itertools.chain.from_iterable(zip(prefixes, bodies, strict=True)))


class FrameReader:
    """Splits a segment's bytes, fed in chunks of any size, into rows."""

    def __init__(self, name: str, *, max_frame: int) -> None:
        self.name = name
        self._max = max_frame
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[RowTuple]:
        rows, used = self._split(chunk)
        del self._buf[:used]
        return rows

    def feed_frames(self, chunk: bytes) -> tuple[list[RowTuple], bytes]:
        """``feed``, plus the bytes of exactly the frames it decoded: what replay sends a
        verification worker, which decodes them again (cheaper than pickling rows)."""
        rows, used = self._split(chunk)
        frames = bytes(self._buf[:used])
        del self._buf[:used]
        return rows, frames

    def _split(self, chunk: bytes) -> tuple[list[RowTuple], int]:
        """The whole frames buffered so far, decoded, and how many bytes they span."""
        self._buf += chunk
        rows: list[RowTuple] = []
        buf, at, end = self._buf, 0, len(self._buf)
        view = memoryview(buf)
        try:
            while end - at >= 4:
                (size,) = _LEN.unpack_from(buf, at)
                if size > self._max:
                    raise BundleError(
                        f"{self.name}: a frame of {size} bytes exceeds the limit of {self._max}",
                        kind="segment",
                        entry=self.name,
                    )
                if end - at - 4 < size:
                    break
                rows.append(self._decode(view[at + 4 : at + 4 + size]))
                at += 4 + size
        finally:
            view.release()
        return rows, at

    def _decode(self, frame: memoryview) -> RowTuple:
        try:
            row: RowTuple = _DECODE(frame)
        except msgspec.DecodeError as exc:
            raise BundleError(
                f"{self.name}: a frame is not a stored event ({exc})",
                kind="segment",
                entry=self.name,
            ) from exc
        return row

    def finish(self) -> None:
        if self._buf:
            raise BundleError(
                f"{self.name}: the segment ends inside a frame ({len(self._buf)} bytes left)",
                kind="segment",
                entry=self.name,
            )


def frames(rows: Iterator[tuple[Any, ...]]) -> Iterator[bytes]:
    """The frames of ``rows``, in order."""
    for row in rows:
        yield encode_frame(row)
