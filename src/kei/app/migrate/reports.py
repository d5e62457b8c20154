"""What a ``kei migrate`` command did or found, as values the CLI renders.

Every report names the target by its credential-free identity and the stream its
history is on; ``to_dict`` is the ``--json`` form.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct, field

from kei.domain.events.migrate import Direction
from kei.domain.migrate.drift import Disagreement
from kei.domain.migrate.plan import Entry


class Step(Struct, frozen=True):
    """One migration run to its end: applied or reverted."""

    version: int
    name: str
    direction: Direction
    duration_us: int | None
    position: int


class Note(Struct, frozen=True):
    """Something the run did besides migrating (a killed run reconciled, a partial run
    resolved) or a warning about what it found."""

    version: int | None
    text: str


class _Report(Struct, kw_only=True):
    target: str
    stream: str

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


class RunReport(_Report, kw_only=True):
    """``up`` or ``down``."""

    direction: Direction
    steps: list[Step] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    """Versions another runner applied or reverted while this one waited."""
    notes: list[Note] = field(default_factory=list)
    drift: list[Disagreement] = field(default_factory=list)


class StatusReport(_Report, kw_only=True):
    """``status``: every version, and what disagrees."""

    entries: list[Entry]
    drift: list[Disagreement]
    interrupted: list[Note]
    logged: bool
    """Whether kei's log was read (False: no ledger yet)."""

    @property
    def applied(self) -> int:
        return sum(e.state == "applied" for e in self.entries)

    @property
    def pending(self) -> int:
        return sum(e.state == "pending" for e in self.entries)


class VerifyReport(_Report, kw_only=True):
    """``verify``: the four-way comparison."""

    drift: list[Disagreement]
    interrupted: list[Note]
    partial: list[Note]
    recorded: int = 0
    """Disagreements appended to the log by this run (new ones only)."""
    schema: str = ""
    """The live schema digest."""

    @property
    def ok(self) -> bool:
        return not (self.drift or self.interrupted or self.partial)


class ImportReport(_Report, kw_only=True):
    """``kei import kei-migrate``."""

    dry_run: bool
    rows: int = 0
    imported: int = 0
    already: int = 0
    not_carried: list[Note] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
