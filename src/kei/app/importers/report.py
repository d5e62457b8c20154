"""What an import did, and what it could not carry over (and why), for people and scripts.

A report is the same whether the import appended (``dry_run=False``) or only
planned (``dry_run=True``): ``events_appended`` then counts what a real run
would append. ``namespace`` is the source database's (``namespaces.py``; empty for
one imported before namespaces existed). ``not_carried`` lists every upstream row, or part of one, that kei
did not take as it was, with the reason; ``notes`` hold facts about the whole
import that are not tied to one row.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import Struct, field

SHOWN: Final = 80


class NotCarried(Struct, frozen=True):
    """One upstream row (or part of one) kei did not take as it was."""

    row: str
    what: str
    why: str

    def line(self) -> str:
        return f"{self.row}\t{self.what}\t{self.why}"


class ImportReport(Struct):
    """Counts, items not carried over and notes of one import run."""

    source: str
    schema_version: int
    dry_run: bool = False
    namespace: str = ""
    agents_imported: int = 0
    agents_updated: int = 0
    agents_unchanged: int = 0
    agents_skipped: int = 0
    events_appended: int = 0
    cost_events: int = 0
    skill_invocations: int = 0
    skills_already: int = 0
    not_carried: list[NotCarried] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    also: list[ImportReport] = field(default_factory=list)  # a bundle's other ledgers

    def skip(self, row: str, what: str, why: str) -> None:
        self.not_carried.append(NotCarried(row, what, why))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)  # nested rows as dicts too
        return data


def shown(value: str | None) -> str:
    """Untrusted upstream text on one line, bounded, quoted."""
    if value is None:
        return "NULL"
    cut = value if len(value) <= SHOWN else value[: SHOWN - 1] + "…"
    return repr(cut)
