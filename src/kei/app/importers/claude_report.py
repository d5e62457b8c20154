"""What one ``kei import claude-code`` read, recorded, closed and left out (and why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import msgspec
from msgspec import Struct, field

KEPT: Final = 1_000  # malformed lines listed in a report; the rest are counted


class BadLine(Struct, frozen=True):
    file: str
    line: int
    why: str


class ClaudeImportReport(Struct):
    """What one import read, recorded and left out (and why)."""

    sources: list[str]
    dry_run: bool = False
    files: int = 0
    lines: int = 0
    sessions: int = 0
    billed: int = 0  # distinct billed messages read
    repeated: int = 0  # lines repeating a message already read in this run
    already: int = 0  # messages kei recorded before this run
    events_appended: int = 0  # cost events appended (a dry run: would append)
    agents_forked: int = 0
    agents_closed: int = 0  # sub-agents marked done or failed (a dry run: would be)
    micro_cents: int = 0  # what the appended events cost
    unpriced: dict[str, int] = field(default_factory=dict)  # model -> messages recorded unpriced
    # model -> fast-mode messages priced at standard rates (no fast price in the catalog)
    speed_unpriced: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    skipped_files: list[list[str]] = field(default_factory=list)  # [path, why]
    refused: list[list[str]] = field(default_factory=list)  # [agent or message, why]: not recorded

    def bad(self, file: Path | str, line: int, why: str) -> None:
        self.malformed += 1
        if len(self.bad_lines) < KEPT:
            self.bad_lines.append(BadLine(str(file), line, why))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data
