"""After a crash: closing the log's open claims, and settling partial MySQL runs.

A ``migrate.started`` with no outcome is a runner that was killed (the database-side
lock is held here, so no runner is still at work on this target). The tracker table
says how far it got, because on SQLite and PostgreSQL the tracker row commits in the
migration's own transaction:

- up, tracker row present: it committed; ``migrate.applied`` with ``recovered=True``;
- up, no row: it rolled back; ``migrate.failed``, ``phase="interrupted"``;
- down, likewise the other way round;
- a ``_kei_migrations_started`` row (MySQL/MariaDB): some of its statements may have
  committed; ``migrate.failed`` with ``partial=True``.

A partial run blocks ``up`` and ``down`` until a person looks at the database and says
which it is (``--resolve-partial``): ``completed`` (all its changes are there: the
tracker row is written, or deleted for a down) or ``undone`` (they took them out: it
will run again). Either is recorded as ``migrate.resolved``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kei.adapters.migrate.base import Transaction
from kei.app.migrate.reports import Note
from kei.app.migrate.session import Session
from kei.domain.events import Payload
from kei.domain.events.migrate import Resolution
from kei.domain.migrate.history import Claim, History
from kei.domain.migrate.runs import Run
from kei.domain.migrate.tracker import StartedRow, TrackerRow, rfc3339


def reconcile(session: Session, tx: Transaction, history: History) -> list[Note]:
    """Append the outcome of every open claim; the notes say what was found."""
    if not history.open or session.recorder is None:
        return []
    rows = {r.version for r in tx.rows()}
    partial = {s.version for s in tx.started_rows()}
    schema = tx.schema_digest()
    payloads: list[Payload] = []
    notes = []
    for version, claim in sorted(history.open.items()):
        payload, text = _outcome(claim, version in rows, version in partial, schema)
        payloads.append(payload)
        notes.append(Note(version, f"{text} (claimed at position {claim.position})"))
    session.recorder.record(payloads)
    return notes


def _outcome(claim: Claim, has_row: bool, is_partial: bool, schema: str) -> tuple[Payload, str]:
    s = claim.started
    run = Run.claimed(s)
    done = has_row if s.direction == "up" else not has_row
    if is_partial or not done:
        text = (
            f"a killed {s.direction} run left {s.version} partly done"
            if is_partial
            else f"a killed {s.direction} run of {s.version} had rolled back"
        )
        failed = run.failed(
            "interrupted", "the runner stopped before recording an outcome", partial=is_partial
        )
        return failed, text
    what = "applied" if s.direction == "up" else "reverted"
    outcome = run.done(s.schema_before_sha256, schema)
    return outcome, f"a killed {s.direction} run of {s.version} had committed: recorded as {what}"


def resolve(
    session: Session,
    tx: Transaction,
    resolution: Resolution,
    clock: Callable[[], datetime],
) -> list[Note]:
    """Settle every partial run as ``resolution`` says, in one transaction, and record it."""
    started = tx.started_rows()
    if not started or session.recorder is None:
        return []
    present = {r.version for r in tx.rows()}
    for s in started:
        if resolution == "completed":
            _complete(tx, s, s.version in present, clock)
        tx.clear_started(s.version)
    schema = tx.schema_digest()
    tx.commit()
    downs = {s.version: s.down_sha256 for s in session.scripts}
    runs = [
        Run(session.identity, s.version, s.name, s.direction, s.checksum, downs.get(s.version))
        for s in started
    ]
    session.recorder.record([run.resolved(resolution, schema) for run in runs])
    return [
        Note(s.version, f"partial {s.direction} run of {s.version}: {resolution}") for s in started
    ]


def _complete(tx: Transaction, s: StartedRow, present: bool, clock: Callable[[], datetime]) -> None:
    if s.direction == "up" and not present:
        tx.insert_row(TrackerRow(s.version, s.name, s.checksum, rfc3339(clock())))
    elif s.direction == "down" and present:
        tx.delete_row(s.version)
