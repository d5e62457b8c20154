"""A target's stream folded: what kei's log says happened to each version.

The fold keeps, per version, the latest applied-or-reverted fact (with the up file's
checksum as it was then, the position and the signing key), the runs claimed by a
``migrate.started`` that no outcome followed (killed runs, to reconcile), the schema
digest the latest change left, and every drift already recorded (so the same
disagreement is appended once, not on every run). ``stream_version`` is how many
events the stream holds: the version the next claim must expect.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Struct, field

from kei.domain.events import Payload
from kei.domain.events import migrate as ev

DriftKey = tuple[str, int | None, str | None, str | None]


Logged = tuple[int, str, Payload]
"""One event of the stream as the fold reads it: position, signing key id, payload."""


class Fact(Struct, frozen=True):
    """The latest applied-or-reverted fact of one version."""

    version: int
    name: str
    applied: bool
    up_sha256: str | None
    down_sha256: str | None
    position: int
    key_id: str
    imported: bool = False


class Claim(Struct, frozen=True):
    """A ``migrate.started`` no outcome followed yet."""

    started: ev.MigrationStarted
    position: int


class History(Struct):
    """What the log says (built by :func:`fold`)."""

    stream_version: int = 0
    facts: dict[int, Fact] = field(default_factory=dict)
    open: dict[int, Claim] = field(default_factory=dict)
    schema: str | None = None
    drifts: set[DriftKey] = field(default_factory=set)

    def applied(self) -> dict[int, Fact]:
        """The versions applied, per the log."""
        return {v: f for v, f in self.facts.items() if f.applied}


def drift_key(drift: ev.MigrationDrift) -> DriftKey:
    return (drift.drift, drift.version, drift.recorded_sha256, drift.actual_sha256)


def fold(events: Iterable[Logged]) -> History:
    """The history of one target's stream, in stream order."""
    history = History()
    for event in events:
        history.stream_version += 1
        _apply(history, event)
    return history


def _apply(h: History, e: Logged) -> None:
    position, key_id, p = e
    if isinstance(p, ev.MigrationStarted):
        h.open[p.version] = Claim(p, position)
    elif isinstance(p, ev.MigrationApplied):
        imported = p.origin is not None
        h.facts[p.version] = Fact(
            p.version, p.name, True, p.up_sha256, p.down_sha256, position, key_id, imported
        )
        _close(h, p.version, p.schema_after_sha256)
    elif isinstance(p, ev.MigrationReverted):
        h.facts[p.version] = Fact(
            p.version, p.name, False, p.up_sha256, p.down_sha256, position, key_id
        )
        _close(h, p.version, p.schema_after_sha256)
    elif isinstance(p, ev.MigrationFailed):
        h.open.pop(p.version, None)
    elif isinstance(p, ev.MigrationResolved):
        if p.resolution == "completed":
            h.facts[p.version] = Fact(
                p.version, p.name, p.direction == "up", p.up_sha256, p.down_sha256, position,
                key_id,
            )  # fmt: skip
        _close(h, p.version, p.schema_after_sha256)
    elif isinstance(p, ev.MigrationDrift):
        h.drifts.add(drift_key(p))


def _close(h: History, version: int, schema: str | None) -> None:
    h.open.pop(version, None)
    if schema is not None:
        h.schema = schema
