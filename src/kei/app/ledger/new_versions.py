"""Stream versions of the rows appended since a checkpoint continue their streams.

The whole-log check walks every stream along the ``(stream, version)`` index
(``verification._version_gaps``); an incremental checkpoint sees only the new rows. For
those, every stream's versions must count up by one in position order, and a stream's
first new version ``v > 1`` must follow version ``v - 1`` stored at or before the
anchor: one batched index lookup per 200 streams, whatever the log's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from kei.adapters.store import EventStore
from kei.adapters.store.base import EVENTS_TABLE
from kei.adapters.store.dialect import Dialect
from kei.domain.log.findings import Finding, FindingKind

_CHUNK: Final = 200


class NewVersions:
    """Fed the new rows (``verify.Row`` tuples) in position order, page by page."""

    def __init__(self) -> None:
        self._first: dict[Any, tuple[int, int]] = {}  # stream -> (version, position)
        self._last: dict[Any, Any] = {}
        self.findings: list[Finding] = []

    def feed(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            pos, stream, version = row[0], row[1], row[2]
            before = self._last.get(stream)
            if before is None and type(version) is int:
                self._first[stream] = (version, pos)
            elif before is None or type(version) is not int or version != before + 1:
                self.findings.append(_gap(pos, stream, f"jumps from version {before} to {version}"))
            self._last[stream] = version

    def check_before(self, store: EventStore, anchor_position: int) -> list[Finding]:
        """The row-by-row findings, and each stream's first new version checked against
        the rows at or before ``anchor_position``."""
        wanted = {s: fv for s, fv in self._first.items() if fv[0] > 1}
        found: set[tuple[str, int]] = set()
        keys: list[tuple[str, int]] = []
        for stream, (version, pos) in wanted.items():
            try:
                keys.append((bytes(stream).decode("utf-8"), version - 1))
            except (UnicodeDecodeError, TypeError):
                self.findings.append(_gap(pos, stream, "has a name that is not UTF-8"))
        for i in range(0, len(keys), _CHUNK):
            found.update(_present(store, keys[i : i + _CHUNK], anchor_position))
        for stream, (version, pos) in wanted.items():
            name = bytes(stream).decode("utf-8", "replace")
            if (name, version - 1) not in found:
                detail = (
                    f"starts at version {version} after the last checkpoint, without {version - 1}"
                )
                self.findings.append(_gap(pos, stream, detail))
        return self.findings


def _present(store: EventStore, keys: list[tuple[str, int]], upto: int) -> set[tuple[str, int]]:
    """Which (stream, version) pairs are stored at or before position ``upto``: one
    probe of the (stream, version) index per pair (the wanted pairs drive the join)."""
    col = Dialect.of(store.url).position
    values = ", ".join(["(CAST(? AS TEXT), CAST(? AS BIGINT))"] * len(keys))
    rows = store.select(
        f"WITH w (s, v) AS (VALUES {values}) "
        f"SELECT e.originator_id, e.originator_version FROM w CROSS JOIN {EVENTS_TABLE} e "
        f"WHERE e.originator_id = w.s AND e.originator_version = w.v AND e.{col} <= ?",
        [*(x for key in keys for x in key), upto],
    )
    return {(str(s), int(v)) for s, v in rows}


def _gap(position: int, stream: Any, what: str) -> Finding:
    name = (
        bytes(stream).decode("utf-8", "replace")
        if isinstance(stream, (bytes, memoryview))
        else str(stream)
    )
    return Finding(FindingKind.VERSION_GAP, position, f"stream {name!r} {what}")
