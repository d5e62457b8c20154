"""Walking a bundle's entries: the proof files, and the rows of every segment, in order.

``BundleContent.rows`` turns the reader's entries into pages of raw rows and checks
the segments' structure as it goes (kind ``events``):

- a segment is named after the position of its first row, holds at most the
  manifest's ``segment_events`` rows, and ends on a whole frame;
- positions increase strictly across the whole bundle;
- at the end, the rows are as many as the manifest says, and the first and last rows
  are the manifest's (position, sequence, previous hash, head hash).

Whether the rows link, hash and verify is for the chain checks (``checks.py``);
this module only reads. Key events are kept aside (they are few) for the key ring.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgspec import Struct, field

from kei.app.bundle.layout import HEADS, is_segment, segment_name
from kei.app.bundle.manifest import FileEntry, Manifest
from kei.app.bundle.reader import BundleReader
from kei.app.bundle.segments import FrameReader, RowTuple
from kei.domain import events
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.errors import BundleError

_KEY_TYPES = frozenset(t.encode() for t in events.KEY_EVENT_TYPES)


class Page(Struct, frozen=True):
    """Rows read from one chunk of a segment, and the bytes of their frames."""

    rows: list[RowTuple]
    frames: bytes


class BundleContent(Struct):
    """What walking a bundle found besides the rows themselves."""

    manifest: Manifest
    proofs: dict[str, bytes] = field(default_factory=dict)
    key_records: list[StoredRecord] = field(default_factory=list)
    heads: list[HeadRow] = field(default_factory=list)  # checked ones (``checks.py``)
    count: int = 0
    first: RowTuple | None = None
    last: RowTuple | None = None

    def rows(self, reader: BundleReader) -> Iterator[list[RowTuple]]:
        """Pages of rows of every segment, in bundle order; proofs are kept aside."""
        for page in self.pages(reader):
            yield page.rows

    def pages(self, reader: BundleReader) -> Iterator[Page]:
        """``rows``, each page with the frames it was decoded from."""
        for entry, chunks in reader.entries():
            if is_segment(entry.name):
                yield from self._segment(entry, chunks, reader.limits.max_frame_bytes)
            else:
                limits = reader.limits
                limit = limits.max_heads_bytes if entry.name == HEADS else limits.max_proof_bytes
                if entry.size > limit:
                    raise _bad(f"{entry.name} has {entry.size} bytes, over the limit of {limit}")
                self.proofs[entry.name] = b"".join(chunks)
        if reader.complete:
            self._check_edges()

    def _segment(self, entry: FileEntry, chunks: Iterator[bytes], max_frame: int) -> Iterator[Page]:
        frames = FrameReader(entry.name, max_frame=max_frame)
        in_segment = 0
        for chunk in chunks:
            rows, raw = frames.feed_frames(chunk)
            if not rows:
                continue
            if in_segment == 0 and segment_name(rows[0][0]) != entry.name:
                raise _bad(f"{entry.name} does not start at its named position ({rows[0][0]})")
            in_segment += len(rows)
            if in_segment > self.manifest.segment_events:
                raise _bad(f"{entry.name} holds more than {self.manifest.segment_events} events")
            self._take(rows)
            yield Page(rows, raw)
        frames.finish()
        if in_segment == 0:
            raise _bad(f"{entry.name} holds no event")

    def _take(self, rows: list[RowTuple]) -> None:
        previous = self.last[0] if self.last is not None else 0
        for row in rows:
            if row[0] <= previous:
                raise _bad(f"position {row[0]} comes after position {previous}")
            previous = row[0]
            if row[3] in _KEY_TYPES:
                stream, type_ = row[1].decode("utf-8", "replace"), row[3].decode()
                self.key_records.append(
                    StoredRecord(row[0], stream, row[2], type_, row[4], *row[5:8])
                )
        if self.first is None:
            self.first = rows[0]
        self.last = rows[-1]
        self.count += len(rows)

    def _check_edges(self) -> None:
        m = self.manifest
        if self.count != m.events or self.first is None or self.last is None:
            raise _bad(f"the bundle holds {self.count} events, its manifest says {m.events}")
        first = (self.first[0], self.first[5], "sha256:" + self.first[6].hex())
        if first != (m.first_position, m.first_seq, m.prev_hash):
            raise _bad("the first event is not the one the manifest names")
        last = (self.last[0], self.last[5], "sha256:" + self.last[7].hex())
        if last != (m.last_position, m.last_seq, m.head_hash):
            raise _bad("the last event is not the manifest's head")


def _bad(detail: str) -> BundleError:
    return BundleError(f"the bundle's events are inconsistent: {detail}", kind="events")
