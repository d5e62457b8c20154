"""Stream versions are gapless: 1, 2, 3, ... in position order (``docs/events.md`` §1).

Fed rows in (stream, version) order, a stream at a time, so it holds one stream's
last row and never a map of every stream: memory stays flat however many streams
the log has. The caller reads the rows along the ``(stream, version)`` index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kei.domain.log.findings import Finding, FindingKind
from kei.limits import LIMITS


class VersionChecker:
    """Findings for streams whose versions, in position order, are not 1, 2, 3, ..."""

    def __init__(self, max_findings: int = LIMITS.max_range_findings) -> None:
        self._stream: Any = None
        self._version = 0
        self._position = 0
        self._max = max_findings
        self.findings: list[Finding] = []
        self.omitted = 0

    def _add(self, position: Any, detail: str) -> None:
        if len(self.findings) < self._max:
            self.findings.append(Finding(FindingKind.VERSION_GAP, position, detail))
        else:
            self.omitted += 1

    def feed(self, rows: Iterable[tuple[Any, Any, Any]]) -> None:
        """Check (stream, version, position) rows, sorted by stream then version."""
        for stream, version, position in rows:
            if stream != self._stream:
                self._stream, self._version, self._position = stream, 0, position
            self._check(stream, version, position, self._version)

    def _check(self, stream: Any, version: Any, position: Any, before: int) -> None:
        name = stream.decode("utf-8", "replace") if isinstance(stream, bytes) else str(stream)
        if type(version) is not int:
            detail = f"stream {name!r} has version {version!r}, not an integer"
            self._add(position, detail)
            return
        if version != before + 1:
            what = f"starts at version {version}"
            if before:
                what = f"jumps from version {before} to {version}"
            detail = f"stream {name!r} {what}"
            self._add(position, detail)
        elif before and position < self._position:
            detail = (
                f"stream {name!r} version {version} is stored before version {before} "
                f"(position {self._position})"
            )
            self._add(position, detail)
        self._version, self._position = version, position


class StreamEnds:
    """Each stream's first and last version over rows read in *position* order, while
    every stream's versions count up by one there (``ok``; False at the first row that
    does not, or whose version is not an integer, after which nothing is kept).

    The ranges of a log checked apart (``verify_pool``) each make one; ``VersionJoin``
    joins them. A log where they join cleanly has no version finding at all, so the
    pass along the index is needed only when they do not (its findings are the ones
    reported, in its order)."""

    __slots__ = ("first", "last", "ok")

    def __init__(self) -> None:
        self.first: dict[Any, int] = {}
        self.last: dict[Any, int] = {}
        self.ok = True

    def feed(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Verifier rows (``verify.Row``: position, stream, version, ...) in position order."""
        if not self.ok:
            return
        first, last = self.first, self.last
        get = last.get
        for row in rows:
            stream, version = row[1], row[2]
            before = get(stream)
            if type(version) is not int or (before is not None and version != before + 1):
                self.ok, self.first, self.last = False, {}, {}
                return
            if before is None:
                if stream is None:
                    self.ok, self.first, self.last = False, {}, {}
                    return
                first[stream] = version
            last[stream] = version


class VersionJoin:
    """Joins the ``StreamEnds`` of consecutive ranges, in position order: ``clean`` while
    every stream so far starts at version 1 and each range continues where the ones
    before it left the stream. Keeps one version per stream, up to ``max_streams``
    streams (beyond that it gives up: memory stays flat, the index pass decides)."""

    def __init__(self, max_streams: int) -> None:
        self._last: dict[Any, int] = {}
        self._max = max_streams
        self.clean = True

    def add(self, ends: StreamEnds | None) -> None:
        """The next range's ends (None: the range made none)."""
        if not self.clean:
            return
        last = self._last
        if (
            ends is None
            or not ends.ok
            or any(v != last.get(s, 0) + 1 for s, v in ends.first.items())
        ):
            self.clean, self._last = False, {}
            return
        last.update(ends.last)
        if len(last) > self._max:
            self.clean, self._last = False, {}
