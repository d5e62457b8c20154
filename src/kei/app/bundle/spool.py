"""Export's step 2: stream the rows to export into segment files, checking the chain.

Rows are read with the verifier's raw scan (``EventStore.scan``: bytes exactly as
stored) through the log's one follower (``LogFollower.scan``: windows of ``PAGE``
positions, each row's link and hash quick-checked from the chain entry before the first
exported one), and framed into segment files of at most ``segment_events`` rows, each
hashed as it is written. Any finding stops the export once the range is read (its
message counts them all): a bundle never carries a history that does not verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from msgspec import Struct, field

from kei.adapters.store.base import EventStore
from kei.adapters.store.follow import LogFollower
from kei.app.bundle.layout import segment_name
from kei.app.bundle.segments import encode_frames
from kei.domain.log.verify import Link, RangeResult
from kei.errors import VerificationError


class SpooledFile(Struct):
    name: str
    path: Path
    size: int = 0
    sha256: str = ""


class Spooled(Struct):
    """The segment files written, and the edges of what they hold."""

    files: list[SpooledFile] = field(default_factory=list)
    events: int = 0
    first_position: int = 0
    first_seq: int = 0
    prev_hash: bytes = b""
    last_position: int = 0
    last_seq: int = 0
    head_hash: bytes = b""
    head_state: bytes = b""


class _Segments:
    """The segment file being written, rotated every ``limit`` rows."""

    def __init__(self, folder: Path, limit: int, spooled: Spooled) -> None:
        self.folder, self.limit, self.spooled = folder, limit, spooled
        self.fh: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.rows = 0

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        at = 0
        while at < len(rows):
            if self.fh is None:
                self._open(rows[at][0])
            take = rows[at : at + self.limit - self.rows]
            data = encode_frames(take)
            assert self.fh is not None
            self.fh.write(data)
            self.digest.update(data)
            self.spooled.files[-1].size += len(data)
            self.rows += len(take)
            at += len(take)
            if self.rows == self.limit:
                self.close()

    def _open(self, position: int) -> None:
        name = segment_name(position)
        path = self.folder / name.replace("/", "_")
        self.spooled.files.append(SpooledFile(name, path))
        self.fh, self.digest, self.rows = path.open("xb"), hashlib.sha256(), 0

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.spooled.files[-1].sha256 = "sha256:" + self.digest.hexdigest()
            self.fh = None


def spool_segments(
    store: EventStore,
    *,
    since: int,
    head: int,
    folder: Path,
    segment_events: int,
    progress: Callable[[int], None] | None = None,
) -> Spooled:
    """Write the rows ``since < position <= head`` into segment files in ``folder``."""
    probe = store.scan(after=since, upto=head, limit=1)
    if not probe:
        raise VerificationError(f"no events between positions {since} and {head}")
    spooled = Spooled()
    _first(spooled, tuple(probe[0]))
    follower = LogFollower(store, _link_before(store, probe[0]), position=since, upto=head)
    out = _Segments(folder, segment_events, spooled)
    last: tuple[Any, ...] = ()
    try:
        while rows := follower.scan():
            out.write(rows)
            spooled.events += len(rows)
            last = rows[-1]
            if progress:
                progress(len(rows))
    finally:
        out.close()
    _last(spooled, follower.scanned, last)
    return spooled


def _link_before(store: EventStore, first: Sequence[Any]) -> Link | None:
    """The chain entry before the first exported row, by its sequence number."""
    seq = first[5]
    if type(seq) is not int or seq == 0:
        return None
    entry = store.chain_at(seq - 1)
    return None if entry is None else Link(entry.position, entry.seq, entry.hash)


def _first(spooled: Spooled, row: tuple[Any, ...]) -> None:
    spooled.first_position, spooled.first_seq = row[0], row[5] or 0
    spooled.prev_hash = bytes(row[6] or b"")


def _last(spooled: Spooled, result: RangeResult, row: tuple[Any, ...]) -> None:
    if result.findings or result.omitted:
        first = result.findings[0]
        total = len(result.findings) + result.omitted
        raise VerificationError(
            f"export stopped: {total} finding(s) in the exported range, the first at "
            f"position {first.position}: {first.kind.value}: {first.detail}; nothing was "
            "written (run `kei verify-chain`)",
            position=first.position,
            kind=first.kind.value,
        )
    spooled.last_position, spooled.last_seq = row[0], row[5]
    spooled.head_hash, spooled.head_state = bytes(row[7]), bytes(row[4])
