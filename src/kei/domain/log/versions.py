"""Stream versions are gapless: 1, 2, 3, ... in position order (``docs/events.md`` §1).

Fed rows in (stream, version) order, a stream at a time, so it holds one stream's
last row and never a map of every stream: memory stays flat however many streams
the log has. The caller reads the rows along the ``(stream, version)`` index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kei.domain.log.verify import Finding, FindingKind
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
