"""``kei migrate up`` and ``down``: plan under the lock, then one step per migration.

Before any step, under the database-side lock, the runner reads the four sources and:

1. reconciles every claim the log holds without an outcome (a killed run);
2. resolves partial MySQL/MariaDB runs when told how (``resolve_partial``), and
   otherwise refuses: the database is neither before nor after such a run;
3. appends every disagreement not yet recorded (``migrate.drift``), and refuses when
   one puts the history in doubt (an edited applied file or tracker row, a deleted
   tracker row) unless ``accept_drift``; the others are warnings;
4. ``up`` refuses pending versions older than the newest applied one unless
   ``allow_out_of_order``; ``down`` checks every version it will revert first.

Then each migration is a step (``steps.py``); the first failure stops the run, the
steps before it stay, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from msgspec import Struct

from kei.adapters.migrate import DEFAULT_LOCK_TIMEOUT
from kei.app.ledger.ledger import Ledger
from kei.app.migrate.drifts import record_new
from kei.app.migrate.reconcile import reconcile, resolve
from kei.app.migrate.reports import Note, RunReport, Step
from kei.app.migrate.session import Session, observe, opened
from kei.app.migrate.steps import run_step
from kei.domain.events.migrate import Direction, Resolution
from kei.domain.migrate.drift import disagreements
from kei.domain.migrate.plan import Observation, down_plan, out_of_order, pending
from kei.domain.migrate.scripts import Script
from kei.errors import InputError, MigrationError


def _now() -> datetime:
    return datetime.now(UTC)


class RunOptions(Struct, frozen=True):
    """How far ``up``/``down`` may go past what they would refuse."""

    allow_out_of_order: bool = False
    accept_drift: bool = False
    resolve_partial: Resolution | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT


def migrate_up(
    ledger: Ledger,
    url: str,
    folder: Path,
    options: RunOptions = RunOptions(),
    clock: Callable[[], datetime] = _now,
    on_step: Callable[[Step], None] | None = None,
) -> RunReport:
    """Apply every pending migration of ``folder`` to the target at ``url``; ``on_step``
    hears of each as it lands (the steps before a failure stay, as upstream)."""
    with opened(ledger, url, folder, lock_timeout=options.lock_timeout, create=True) as s:
        report = RunReport(target=s.identity, stream=s.stream, direction="up")
        obs = _preflight(s, options, report, clock)
        older = out_of_order(obs)
        if older and not options.allow_out_of_order:
            raise MigrationError(
                f"{len(older)} pending migration(s) are older than the newest applied "
                f"({older[0].label} first); nothing was applied",
                hint="pass --allow-out-of-order to apply them anyway",
            )
        _steps(s, pending(obs), "up", report, clock, options, on_step)
        return report


def migrate_down(
    ledger: Ledger,
    url: str,
    folder: Path,
    count: int = 1,
    options: RunOptions = RunOptions(),
    clock: Callable[[], datetime] = _now,
    on_step: Callable[[Step], None] | None = None,
) -> RunReport:
    """Revert the ``count`` newest applied migrations, newest first."""
    if count < 1:
        raise InputError("down reverts at least one migration")
    with opened(ledger, url, folder, lock_timeout=options.lock_timeout) as s:
        report = RunReport(target=s.identity, stream=s.stream, direction="down")
        obs = _preflight(s, options, report, clock)
        plan = [script for _, script in down_plan(obs, count)]
        if len(plan) < count:
            report.notes.append(Note(None, f"only {len(plan)} migration(s) are applied"))
        _steps(s, plan, "down", report, clock, options, on_step)
        return report


def _steps(
    s: Session,
    scripts: list[Script],
    direction: Direction,
    report: RunReport,
    clock: Callable[[], datetime],
    options: RunOptions,
    on_step: Callable[[Step], None] | None,
) -> None:
    for script in scripts:
        step = run_step(s, script, direction, clock, allow_older=options.allow_out_of_order)
        if step is None:
            report.skipped.append(script.version)
            continue
        report.steps.append(step)
        if on_step is not None:
            on_step(step)


def _preflight(
    s: Session, options: RunOptions, report: RunReport, clock: Callable[[], datetime]
) -> Observation:
    """Steps 1-3 of the module docstring, in one transaction; the sources after them."""
    assert s.recorder is not None
    with s.db.transaction() as tx:
        history = s.recorder.history()
        report.notes += reconcile(s, tx, history)
        if history.open:
            history = s.recorder.history()
        obs = observe(s, tx, history)
        if obs.started:
            if options.resolve_partial is None:
                first = obs.started[0]
                raise MigrationError(
                    f"migration {first.version} ({first.direction}) is partial on "
                    f"{s.identity}: some of its statements committed, its run did not finish",
                    hint="fix the database by hand, then run again with --resolve-partial "
                    "completed (its changes are all there) or undone (you took them out)",
                )
            report.notes += resolve(s, tx, options.resolve_partial, clock)
            obs = observe(s, tx, s.recorder.history())
        found = disagreements(obs)
        record_new(s, obs, found)
        report.drift = found
        blocking = [d for d in found if d.blocking]
        if blocking and not options.accept_drift:
            raise MigrationError(
                f"{blocking[0].drift} on {s.identity}: {blocking[0].detail}"
                + (f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else "")
                + "; nothing was run",
                hint="kei migrate verify lists every disagreement; restore what was "
                "edited, or pass --accept-drift to go on (the drift stays recorded)",
            )
    return obs
