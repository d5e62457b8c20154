"""One migration run, up or down, with its claim and its outcome in the log.

Each step is one database transaction under the database-side lock (on SQLite the
transaction's ``BEGIN IMMEDIATE`` *is* the lock). Inside it the step reads the
tracker table again, so a version another runner handled while this one waited is
skipped, not run twice; reads the log's stream; digests the schema; claims the
version in the log (``migrate.started`` at the stream's version: refused if another
runner moved it, before anything ran); then:

- SQLite, PostgreSQL (DDL is transactional): runs the file, writes or deletes the
  tracker row, commits: all or nothing;
- MySQL/MariaDB (DDL commits as it goes): commits a ``_kei_migrations_started`` row,
  runs the file, then writes or deletes the tracker row and deletes the started row
  in one transaction. A failure after a statement succeeded leaves the started row:
  the run is partial, and ``up``/``down`` refuse until it is resolved.

The outcome (``migrate.applied``, ``migrate.reverted`` or ``migrate.failed``) is
appended after the commit. A process killed anywhere leaves a claim with no outcome,
which the next run reconciles (``reconcile.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from kei.adapters.migrate.base import ScriptError, Transaction
from kei.app.migrate.reports import Step
from kei.app.migrate.session import Session
from kei.domain.events.migrate import Direction, MigrationApplied, MigrationReverted
from kei.domain.migrate.runs import Run
from kei.domain.migrate.scripts import Script
from kei.domain.migrate.tracker import StartedRow, TrackerRow, rfc3339
from kei.errors import ContentionError, MigrationError

Clock = Callable[[], datetime]


def run_step(
    session: Session, script: Script, direction: Direction, clock: Clock, *, allow_older: bool
) -> Step | None:
    """Apply (``up``) or revert (``down``) ``script``; None when another runner already
    did. Raises MigrationError when its SQL fails (recorded first)."""
    assert session.recorder is not None
    with session.db.transaction() as tx:
        present = {r.version for r in tx.rows()}
        if (script.version in present) == (direction == "up"):
            return None
        _check_still_runnable(session, tx, script, present, direction, allow_older)
        history = session.recorder.history()
        if history.open:
            raise ContentionError(
                f"a run claimed in the log on {session.identity} has no outcome yet",
                hint="run the command again: it reconciles that run first",
            )
        before = tx.schema_digest()
        run = Run.of(session.identity, script, direction)
        session.recorder.claim(run.started(before), history)
        started = time.monotonic_ns()
        try:
            after = _run(session, tx, script, direction, clock)
        except ScriptError as exc:
            took = (time.monotonic_ns() - started) // 1000
            partial = _partial(session, exc)
            failed = run.failed("run", str(exc), partial=partial,
                                statements_run=exc.statements_run, duration_us=took)  # fmt: skip
            session.recorder.record([failed])
            raise _failure(script, direction, exc, partial) from None
        duration = (time.monotonic_ns() - started) // 1000
    outcome = _outcome(run, before, after, duration, script.irreversible)
    (event,) = session.recorder.record([outcome])
    return Step(script.version, script.name, direction, duration, event.position)


def _check_still_runnable(
    session: Session,
    tx: Transaction,
    script: Script,
    present: set[int],
    direction: Direction,
    allow_older: bool,
) -> None:
    """What the plan checked, checked again under the lock: another runner may have
    moved the database on while this one waited."""
    if tx.started_rows():
        raise MigrationError(
            f"a partial run appeared on {session.identity} while this one waited",
            hint="kei migrate status shows it; resolve it with --resolve-partial",
        )
    newest = max(present, default=None)
    if direction == "up" and not allow_older and newest is not None and script.version < newest:
        raise MigrationError(
            f"migration {script.version} is older than {newest}, applied meanwhile",
            hint="pass --allow-out-of-order to apply it anyway",
        )


def _run(
    session: Session, tx: Transaction, script: Script, direction: Direction, clock: Clock
) -> str:
    """Run the file and move the tracker row; the schema digest after."""
    file = script.up if direction == "up" else script.down
    assert file is not None
    paired = not session.db.transactional_ddl
    if paired:
        tx.mark_started(StartedRow(script.version, script.name, direction, script.up.sha256,
                                   rfc3339(clock())))  # fmt: skip
        tx.commit()
    try:
        tx.run(file.sql)
    except ScriptError as exc:
        if paired and not exc.statements_run:
            tx.clear_started(script.version)  # nothing ran: not partial
            tx.commit()
        raise
    if direction == "up":
        tx.insert_row(TrackerRow(script.version, script.name, script.up.sha256, rfc3339(clock())))
    else:
        tx.delete_row(script.version)
    if paired:
        tx.clear_started(script.version)
    after = tx.schema_digest()
    tx.commit()
    return after


def _outcome(
    run: Run, before: str, after: str, duration: int, irreversible: bool
) -> MigrationApplied | MigrationReverted:
    """The outcome once committed (its own function: a crash test stops the process here)."""
    return run.done(before, after, duration, irreversible=irreversible)


def _partial(session: Session, exc: ScriptError) -> bool:
    return not session.db.transactional_ddl and bool(exc.statements_run)


def _failure(
    script: Script, direction: Direction, exc: ScriptError, partial: bool
) -> MigrationError:
    first = str(exc).splitlines()[0] if str(exc) else "error"
    what = f"{direction} migration {script.label} failed: {first}"
    if partial:
        return MigrationError(
            f"{what}; {exc.statements_run} statement(s) had committed, so it is partly applied",
            hint="fix the database by hand, then run again with --resolve-partial completed "
            "(its changes are all there) or --resolve-partial undone (you took them out)",
        )
    return MigrationError(f"{what}; nothing of it was applied", hint="fix the file, then run again")
