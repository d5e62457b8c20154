"""What ``status``, ``up`` and ``down`` see: the files on disk against the tracker table.

An :class:`Observation` is everything read from the four sources at one moment: the
migrations folder, the tracker table (and, on MySQL/MariaDB, the rows of runs begun
and not finished), the live schema digest, and the log's history (None when no
ledger was read). From it:

- :func:`entries`: every version on disk or in the tracker table, as ``applied``,
  ``pending``, ``missing-file`` (applied, but its file is gone: upstream showed
  nothing) or ``partial``; a pending version older than the newest applied one is
  ``out_of_order`` (upstream applied it silently; ``up`` refuses it unless told);
- :func:`pending`: the versions ``up`` would apply, in order;
- :func:`down_plan`: the N newest applied versions, newest first, each with a down
  file that is not marked irreversible, checked whole before any runs.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from kei.domain.migrate.history import History
from kei.domain.migrate.scripts import DOWN_SUFFIX, Script
from kei.domain.migrate.tracker import StartedRow, TrackerRow
from kei.errors import InputError, MigrationError

State = Literal["applied", "pending", "missing-file", "partial"]


class Observation(Struct, frozen=True):
    """The four sources, read at one moment."""

    scripts: list[Script]
    rows: list[TrackerRow]
    started: list[StartedRow]
    schema: str
    history: History | None = None

    def rows_by_version(self) -> dict[int, TrackerRow]:
        return {r.version: r for r in self.rows}

    def scripts_by_version(self) -> dict[int, Script]:
        return {s.version: s for s in self.scripts}


class Entry(Struct, frozen=True):
    """One version as ``status`` shows it."""

    version: int
    name: str
    state: State
    out_of_order: bool = False
    up_file: str | None = None
    applied_at: str | None = None
    position: int | None = None
    key_id: str | None = None


def entries(obs: Observation) -> list[Entry]:
    """Every version on disk or in the tracker table, by version."""
    rows, scripts = obs.rows_by_version(), obs.scripts_by_version()
    partial = {s.version: s for s in obs.started}
    facts = {} if obs.history is None else obs.history.applied()
    newest = max(rows, default=None)
    out: list[Entry] = []
    for version in sorted(set(rows) | set(scripts) | set(partial)):
        row, script, fact = rows.get(version), scripts.get(version), facts.get(version)
        name = script.name if script else row.name if row else partial[version].name
        state: State
        if version in partial:
            state = "partial"
        elif row is not None:
            state = "applied" if script is not None else "missing-file"
        else:
            state = "pending"
        out.append(
            Entry(
                version=version,
                name=name,
                state=state,
                out_of_order=state == "pending" and newest is not None and version < newest,
                up_file=None if script is None else script.up.filename,
                applied_at=None if row is None else row.applied_at,
                position=None if fact is None else fact.position,
                key_id=None if fact is None else fact.key_id,
            )
        )
    return out


def pending(obs: Observation) -> list[Script]:
    """The scripts ``up`` would apply: on disk, neither applied nor partial."""
    done = {r.version for r in obs.rows} | {s.version for s in obs.started}
    return [s for s in obs.scripts if s.version not in done]


def out_of_order(obs: Observation) -> list[Script]:
    """Pending scripts older than the newest applied version."""
    newest = max((r.version for r in obs.rows), default=None)
    return [s for s in pending(obs) if newest is not None and s.version < newest]


def down_plan(obs: Observation, count: int) -> list[tuple[TrackerRow, Script]]:
    """The ``count`` newest applied versions, newest first, each revertible; refuses
    the whole plan, in one line, if any is not (nothing is reverted then)."""
    scripts = obs.scripts_by_version()
    chosen = sorted(obs.rows, key=lambda r: r.version, reverse=True)[:count]
    plan = []
    for row in chosen:
        script = scripts.get(row.version)
        label = f"{row.version}_{row.name}"
        if script is None:
            raise InputError(
                f"migration {label!a} is applied but its file is not in the folder",
                hint="restore its .sql and .down.sql files, then run down again",
            )
        if script.down is None:
            raise InputError(
                f"no down file for migration {script.label!a}",
                hint=f"write {script.label}{DOWN_SUFFIX}; nothing was reverted",
            )
        if script.irreversible:
            raise MigrationError(
                f"migration {script.label!a} is marked irreversible; nothing was reverted",
                hint="its down file holds the marker line; remove it only if reverting is safe",
            )
        plan.append((row, script))
    return plan
