"""The signed history of the schema changes ``kei migrate`` makes to another database.

Every event lands on the target's stream, ``migrate/<target>``, where ``target`` is the
database named without credentials (``postgresql://db.example:5432/app``,
``sqlite:////srv/app.db``): no user name, password or query parameter ever reaches
the log. The key that ran a migration is the key that signed its events (the
envelope's key id), so no payload repeats it.

A run on one version is a ``migrate.started`` claim, appended at the stream's version
as read (so two runners sharing the ledger cannot both claim), then one outcome:
``migrate.applied`` / ``migrate.reverted`` or ``migrate.failed``. A started event with
no outcome is a run that was killed; the next run reconciles it against the tracker
table and appends the outcome it finds (``recovered=True``, or ``phase="interrupted"``).
``migrate.resolved`` records how a person settled a partial MySQL/MariaDB run, and
``migrate.drift`` every disagreement found between the files on disk, the tracker
table, this log and the live schema. Digests are lowercase hex SHA-256.
"""

from __future__ import annotations

from typing import Final, Literal

from kei.domain.events.payload import Origin, Payload

MIGRATE_STREAM_PREFIX: Final = "migrate/"
Direction = Literal["up", "down"]
Phase = Literal["run", "interrupted"]
Resolution = Literal["completed", "undone"]
DriftKind = Literal[
    "file-edited",
    "down-file-edited",
    "file-missing",
    "tracker-edited",
    "row-deleted",
    "row-added",
    "schema-changed",
]


class _OnVersion(Payload, frozen=True, kw_only=True):
    """What every event about one migration names first: the target, version and name."""

    target: str
    version: int
    name: str


class MigrationStarted(_OnVersion, frozen=True, kw_only=True):
    """A runner claims one version, before it touches the database."""

    direction: Direction
    up_sha256: str | None = None
    down_sha256: str | None = None
    schema_before_sha256: str


class MigrationApplied(_OnVersion, frozen=True, kw_only=True):
    """An up file ran and its tracker row was written.

    ``recovered``: the runner was killed after its commit, and a later run found the
    tracker row (``duration_us`` is then unknown). ``origin``: carried over from an
    upstream tracker table by ``kei import kei-migrate`` (digests unknown).
    """

    up_sha256: str
    down_sha256: str | None = None
    irreversible: bool = False
    schema_before_sha256: str | None = None
    schema_after_sha256: str | None = None
    duration_us: int | None = None
    recovered: bool = False
    origin: Origin | None = None


class MigrationReverted(_OnVersion, frozen=True, kw_only=True):
    """A down file ran and the tracker row was deleted."""

    up_sha256: str | None = None
    down_sha256: str
    schema_before_sha256: str | None = None
    schema_after_sha256: str | None = None
    duration_us: int | None = None
    recovered: bool = False


class MigrationFailed(_OnVersion, frozen=True, kw_only=True):
    """A run did not complete. ``phase="run"``: its SQL failed; ``"interrupted"``: it
    was killed, found by a later run. ``partial``: some statements committed anyway
    (MySQL/MariaDB commit DDL as they go), so the database is neither before nor after
    until a person resolves it. ``statements_run`` counts those that succeeded."""

    direction: Direction
    phase: Phase
    error: str = ""
    partial: bool = False
    statements_run: int | None = None
    duration_us: int | None = None
    up_sha256: str | None = None
    down_sha256: str | None = None


class MigrationResolved(_OnVersion, frozen=True, kw_only=True):
    """A person settled a partial run: ``completed`` (the database holds all of its
    changes: recorded as applied or reverted) or ``undone`` (they took its changes out:
    it counts as never run). ``schema_after_sha256``: the schema as found then."""

    direction: Direction
    resolution: Resolution
    up_sha256: str | None = None
    down_sha256: str | None = None
    schema_after_sha256: str | None = None


class MigrationDrift(Payload, frozen=True, kw_only=True):
    """One disagreement between the four sources (``docs/migrate.md``): ``recorded``
    is what the log (else the tracker table) holds, ``actual`` what was found."""

    target: str
    drift: DriftKind
    version: int | None = None
    recorded_sha256: str | None = None
    actual_sha256: str | None = None
    detail: str = ""


def migrate_stream(target: str) -> str:
    return f"{MIGRATE_STREAM_PREFIX}{target}"
