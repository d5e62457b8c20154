"""Replay's one pass over a bundle: read, stage, verify and fold, a range at a time.

Each range of about ``PassSizes.range_rows`` rows read from the bundle is sent to a
verification worker as the frames it was read from (``verifiers.py``), or checked
here when the bundle is small or there is one core; every ``batch_rows`` rows are

1. staged: inserted verbatim into the staging store, in a transaction of their own;
2. folded into the projections being rebuilt (``Rebuild.fold``), where they lie after
   the target's own log;

and the workers' results are joined in order as they come in. Signatures cost about
three times what reading, staging and folding cost together, so this process and the
workers keep two cores busy until the last range, instead of reading first and
verifying after: on two cores replay takes about 1.2 times as long as
``verify-chain`` (``docs/benchmarks.md``).

Nothing is trusted before the end. A reader error (the bundle's structure) propagates
at once; findings and a failure of the fold are returned, and the caller raises the
findings first. Once a range has findings, nothing more is sent or folded: the rest
of the bundle is only read (and so still checked for structure) and staged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from msgspec import Struct, field

from kei.adapters.workers.verify_pool import check_range_rows
from kei.app.bundle.content import BundleContent, Page
from kei.app.bundle.reader import BundleReader
from kei.app.bundle.segments import RowTuple
from kei.app.bundle.verifiers import FrameVerifiers
from kei.app.restore.staging import Staging
from kei.domain.log.findings import Finding
from kei.domain.log.keyring import build_keyring
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import (
    Link,
    RangeChecker,
    RangeResult,
    check_row_link,
)
from kei.errors import BundleError
from kei.limits import LIMITS

Progress = Callable[[str, int, int], None] | None
"""(phase, rows done since the last call, rows in the phase)."""


class PassSizes(Struct, frozen=True):
    """How a replay cuts a bundle into work: ranges for the workers (small, so the
    last one leaves little to wait for), batches staged and folded in one
    transaction each (large: a commit rewrites the pages it touched)."""

    range_rows: int = 10_000
    batch_rows: int = 50_000
    parallel_min: int = 20_000
    max_findings: int = LIMITS.max_bundle_findings


class PassResult(Struct):
    """What the pass found: rows checked, findings (some omitted), a failed fold."""

    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    omitted: int = 0
    fold_error: Exception | None = None


class _Join(Struct):
    """Range results joined in order: each range's first link against the range before."""

    ref: Link | None
    result: PassResult = field(default_factory=PassResult)

    def add(self, checked: RangeResult) -> None:
        self.result.checked += checked.count
        self.result.findings += checked.findings
        self.result.omitted += checked.omitted
        self.ref = checked.last or self.ref


class ReplayPass:
    """One pass over ``content``'s rows; see the module docstring."""

    def __init__(
        self,
        content: BundleContent,
        staging: Staging,
        *,
        link: Link | None,
        keys_before: list[StoredRecord],
        fold: Callable[[list[StoredRecord]], None] | None,
        fold_after: int,
        jobs: int = 1,
        sizes: PassSizes = PassSizes(),
        progress: Progress = None,
    ) -> None:
        self.content, self.staging, self.sizes = content, staging, sizes
        self.fold, self.fold_after = fold, fold_after
        self.keys = list(keys_before)
        self._ring = build_keyring(self.keys)  # grows with the key events read
        self._keys_taken = 0
        self._join = _Join(link)
        self._serial = RangeChecker(self._ring, prev=link, max_findings=sizes.max_findings)
        self._ranges: deque[tuple[int, int]] = deque()
        self._batch: list[StoredRecord] = []
        self._last = content.manifest.first_position - 1
        self._progress = progress
        self._jobs = jobs if content.manifest.events >= sizes.parallel_min else 1
        self._workers: FrameVerifiers | None = None

    @property
    def _bad(self) -> bool:
        return bool(self._join.result.findings or self._serial.result.findings)

    def run(self, reader: BundleReader, meanwhile: Callable[[], None] | None = None) -> PassResult:
        """Read every row of the bundle; what verification and the fold found.

        ``meanwhile`` runs once everything is read and folded, while the workers check
        the last ranges (replay takes the rebuild's digests then); not after a finding
        or a failed fold.
        """
        if self._jobs > 1:
            self._workers = FrameVerifiers(
                self._jobs,
                max_frame=reader.limits.max_frame_bytes,
                max_findings=self.sizes.max_findings,
            )
        try:
            self._read(reader)
            if meanwhile is not None and not self._bad and self._join.result.fold_error is None:
                try:
                    meanwhile()
                except Exception as exc:  # the fold's, so raised after any finding
                    self._join.result.fold_error = exc
            while self._workers is not None and self._workers.in_flight:
                self._take_result()
        finally:
            if self._workers is not None:
                self._workers.close(abort=self._workers.in_flight > 0)
        return self._result()

    def _read(self, reader: BundleReader) -> None:
        rows: list[RowTuple] = []
        frames: list[bytes] = []
        for page in self.content.pages(reader):
            self._tick("reading", page)
            rows += page.rows
            frames.append(page.frames)
            if len(rows) >= self.sizes.range_rows:
                self._range(rows, b"".join(frames))
                rows, frames = [], []
            while self._workers is not None and self._workers.ready():
                self._take_result()
        if rows:
            self._range(rows, b"".join(frames))
        self._flush()

    def _range(self, rows: list[RowTuple], frames: bytes) -> None:
        self._batch += [_record(r) for r in rows]
        for record in self.content.key_records[self._keys_taken :]:
            self.keys.append(record)
            self._ring.apply(record)
        self._keys_taken = len(self.content.key_records)
        lo, hi = self._last, rows[-1][0]
        self._last = hi
        if not self._bad:
            if self._workers is None:
                self._check_here(rows)
            else:
                self._workers.submit(self.keys, frames)
                self._ranges.append((lo, hi))
        if len(self._batch) >= self.sizes.batch_rows:
            self._flush()

    def _flush(self) -> None:
        """Stage the records read since the last batch, and fold them."""
        batch, self._batch = self._batch, []
        if batch:
            self.staging.append(batch)
            if not self._bad:
                self._fold(batch)

    def _check_here(self, rows: list[RowTuple]) -> None:
        self._serial.feed(rows)
        if self._progress is not None:
            self._progress("verifying", len(rows), self.content.manifest.events)

    def _take_result(self) -> None:
        assert self._workers is not None
        lo, hi = self._ranges.popleft()
        result = self._workers.next_result()
        if result.first is not None and check_row_link(self._join.ref, *result.first):
            result = self._recheck(lo, hi)
        self._join.add(result)
        if self._progress is not None:
            self._progress("verifying", result.count, self.content.manifest.events)

    def _recheck(self, lo: int, hi: int) -> RangeResult:
        """A range whose first row does not follow the range before, checked again
        from the staged rows, linked to that range: the findings name what is wrong."""
        self._flush()
        checker = RangeChecker(
            self._ring, prev=self._join.ref, max_findings=self.sizes.max_findings
        )
        for _ in check_range_rows(self.staging.store, checker, (lo, hi)):
            pass
        return checker.result

    def _fold(self, records: list[StoredRecord]) -> None:
        if self.fold is None or self._join.result.fold_error is not None:
            return
        after = self.fold_after
        try:
            self.fold(records if records[0].position > after else
                      [r for r in records if r.position > after])  # fmt: skip
        except Exception as exc:  # raised by the caller, after any finding
            self._join.result.fold_error = exc

    def _result(self) -> PassResult:
        result = self._join.result
        if self._workers is None:
            serial = self._serial.result
            result.checked += serial.count
            result.findings += serial.findings
            result.omitted += serial.omitted
        return result

    def _tick(self, phase: str, page: Page) -> None:
        if self._progress is not None:
            self._progress(phase, len(page.rows), self.content.manifest.events)


def _record(row: RowTuple) -> StoredRecord:
    """A row as the stores hand records over: stream and type as text. No store
    writes anything but UTF-8 there, so other bytes are refused at once."""
    try:
        stream, type_ = row[1].decode(), row[3].decode()
    except UnicodeDecodeError as exc:
        raise BundleError(
            f"the event at position {row[0]} has a stream or type that is not UTF-8 text",
            kind="events",
        ) from exc
    return StoredRecord(row[0], stream, row[2], type_, row[4], row[5], row[6], row[7])
