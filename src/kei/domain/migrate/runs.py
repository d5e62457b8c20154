"""One run of one migration, and the events that tell it: each payload is built here, once,
whether the runner writes it as it goes or a later run writes it while reconciling.

A :class:`Run` is what every event of a run repeats: the target, the version and name,
the direction, and the checksums of the files as they were when it started.
"""

from __future__ import annotations

from msgspec import Struct

from kei.domain.events.migrate import (
    Direction,
    MigrationApplied,
    MigrationFailed,
    MigrationResolved,
    MigrationReverted,
    MigrationStarted,
    Phase,
    Resolution,
)
from kei.domain.migrate.scripts import Script


class Run(Struct, frozen=True):
    """A run of ``version`` on ``target`` in ``direction``."""

    target: str
    version: int
    name: str
    direction: Direction
    up_sha256: str | None
    down_sha256: str | None

    @classmethod
    def of(cls, target: str, script: Script, direction: Direction) -> Run:
        return cls(
            target, script.version, script.name, direction, script.up.sha256, script.down_sha256
        )

    @classmethod
    def claimed(cls, s: MigrationStarted) -> Run:
        return cls(s.target, s.version, s.name, s.direction, s.up_sha256, s.down_sha256)

    def started(self, before: str) -> MigrationStarted:
        return MigrationStarted(
            target=self.target, version=self.version, name=self.name, direction=self.direction,
            up_sha256=self.up_sha256, down_sha256=self.down_sha256, schema_before_sha256=before,
        )  # fmt: skip

    def done(
        self,
        before: str | None,
        after: str,
        duration_us: int | None = None,
        *,
        irreversible: bool = False,
    ) -> MigrationApplied | MigrationReverted:
        """The outcome of a run that committed; ``duration_us`` None: found by a later run."""
        recovered = duration_us is None
        if self.direction == "up":
            assert self.up_sha256 is not None
            return MigrationApplied(
                target=self.target, version=self.version, name=self.name,
                up_sha256=self.up_sha256, down_sha256=self.down_sha256,
                irreversible=irreversible, schema_before_sha256=before,
                schema_after_sha256=after, duration_us=duration_us, recovered=recovered,
            )  # fmt: skip
        assert self.down_sha256 is not None
        return MigrationReverted(
            target=self.target, version=self.version, name=self.name,
            up_sha256=self.up_sha256, down_sha256=self.down_sha256,
            schema_before_sha256=before, schema_after_sha256=after,
            duration_us=duration_us, recovered=recovered,
        )  # fmt: skip

    def failed(
        self,
        phase: Phase,
        error: str,
        *,
        partial: bool = False,
        statements_run: int | None = None,
        duration_us: int | None = None,
    ) -> MigrationFailed:
        return MigrationFailed(
            target=self.target, version=self.version, name=self.name, direction=self.direction,
            phase=phase, error=error, partial=partial, statements_run=statements_run,
            duration_us=duration_us, up_sha256=self.up_sha256, down_sha256=self.down_sha256,
        )  # fmt: skip

    def resolved(self, resolution: Resolution, schema: str) -> MigrationResolved:
        return MigrationResolved(
            target=self.target, version=self.version, name=self.name, direction=self.direction,
            resolution=resolution, up_sha256=self.up_sha256, down_sha256=self.down_sha256,
            schema_after_sha256=schema,
        )  # fmt: skip
