"""The four-way comparison: files on disk, the tracker table, kei's log, the live schema.

Upstream compared two sources (the up file's checksum against the tracker row);
anyone who can edit the folder *and* the table could make those agree. The log is
signed and chained, so it decides which of the others moved:

- ``file-edited``: an applied up file's checksum differs from the log's (or, for a
  version the log never saw, the tracker row's, as upstream checked);
- ``tracker-edited``: a tracker row's checksum or name differs from the log's;
- ``row-deleted``: the log says applied, the tracker table has no row;
- ``row-added``: the tracker table has a row the log never recorded as applied
  (applied by another tool, or by hand: ``kei import kei-migrate`` carries rows over);
- ``file-missing``: an applied version's up file is not in the folder;
- ``down-file-edited``: the down file differs from the one on disk when it was applied;
- ``schema-changed``: the live schema digest differs from the one the log's latest
  change left: someone changed the schema by hand.

The first three refuse ``up`` and ``down`` (upstream refused the first): running on
would build on a history nobody can vouch for. The rest are reported and recorded.
"""

from __future__ import annotations

from typing import Final

from msgspec import Struct

from kei.domain.events.migrate import DriftKind, MigrationDrift
from kei.domain.migrate.history import DriftKey, Fact
from kei.domain.migrate.plan import Observation
from kei.domain.migrate.scripts import Script
from kei.domain.migrate.tracker import TrackerRow

BLOCKING: Final = frozenset({"file-edited", "tracker-edited", "row-deleted"})


class Disagreement(Struct, frozen=True):
    """One disagreement: what the log (else the tracker) holds and what was found."""

    drift: DriftKind
    version: int | None
    recorded: str | None
    actual: str | None
    detail: str

    @property
    def blocking(self) -> bool:
        return self.drift in BLOCKING

    @property
    def key(self) -> DriftKey:
        return (self.drift, self.version, self.recorded, self.actual)

    def payload(self, target: str) -> MigrationDrift:
        """The event recording it."""
        return MigrationDrift(target=target, drift=self.drift, version=self.version,
                              recorded_sha256=self.recorded, actual_sha256=self.actual,
                              detail=self.detail)  # fmt: skip


def disagreements(obs: Observation) -> list[Disagreement]:
    """Every disagreement among the four sources, by version, schema last."""
    rows, scripts = obs.rows_by_version(), obs.scripts_by_version()
    history = obs.history
    facts = {} if history is None else history.facts
    # a killed run's version is reconciled by the next up or down, not a drift yet
    skip = {s.version for s in obs.started} | (set() if history is None else set(history.open))
    found: list[Disagreement] = []
    for version in sorted(set(rows) | {v for v, f in facts.items() if f.applied}):
        row, script, fact = rows.get(version), scripts.get(version), facts.get(version)
        applied = fact if fact is not None and fact.applied else None
        if row is not None:
            found += _row_checks(
                row, script, applied, history is not None and version not in skip, fact
            )
        elif applied is not None and version not in skip:
            found.append(
                Disagreement(
                    "row-deleted",
                    version,
                    applied.up_sha256,
                    None,
                    f"kei's log says {version} was applied (position {applied.position}); "
                    "the tracker table has no row for it",
                )
            )
    if history is not None and history.schema is not None and history.schema != obs.schema:
        found.append(
            Disagreement(
                "schema-changed",
                None,
                history.schema,
                obs.schema,
                "the live schema differs from the one kei's last recorded change left "
                "(changed by hand?)",
            )
        )
    return found


def _row_checks(
    row: TrackerRow, script: Script | None, applied: Fact | None, logged: bool, fact: Fact | None
) -> list[Disagreement]:
    v = row.version
    out: list[Disagreement] = []
    reference = applied.up_sha256 if applied and applied.up_sha256 else row.checksum
    source = f"kei's log (position {applied.position})" if applied else "the tracker table"
    if script is None:
        out.append(
            Disagreement(
                "file-missing", v, reference, None, f"{v}_{row.name}.sql is not in the folder"
            )
        )
    elif script.up.sha256 != reference:
        out.append(
            Disagreement(
                "file-edited",
                v,
                reference,
                script.up.sha256,
                f"{script.up.filename} differs from the file applied, as {source} records it",
            )
        )
    if applied is not None:
        if applied.up_sha256 is not None and row.checksum != applied.up_sha256:
            out.append(
                Disagreement(
                    "tracker-edited",
                    v,
                    applied.up_sha256,
                    row.checksum,
                    f"the tracker row's checksum differs from kei's log (position "
                    f"{applied.position})",
                )
            )
        if row.name != applied.name:
            out.append(
                Disagreement(
                    "tracker-edited",
                    v,
                    None,
                    None,
                    f"the tracker row names it {row.name!r}, kei's log {applied.name!r}",
                )
            )
        if (
            script is not None
            and not applied.imported
            and applied.down_sha256 != script.down_sha256
        ):
            out.append(
                Disagreement(
                    "down-file-edited",
                    v,
                    applied.down_sha256,
                    script.down_sha256,
                    f"the down file of {script.label} differs from the one there when it was "
                    "applied",
                )
            )
    elif logged:
        why = (
            f"kei's log says it was reverted (position {fact.position})"
            if fact is not None
            else "kei's log never recorded it (applied by another tool? kei import kei-migrate "
            "carries such rows over)"
        )
        out.append(Disagreement("row-added", v, None, row.checksum, f"tracker row {v}: {why}"))
    return out
