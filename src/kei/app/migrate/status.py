"""``kei migrate status``, ``verify`` and ``create``: reading, comparing, scaffolding.

``status`` lists every version as applied, pending (out of order when older than the
newest applied), missing-file or partial, with the disagreements found, and appends
nothing; it reads kei's log when there is a ledger (``ledger`` None: without it).
``verify`` is the four-way comparison (``kei.domain.migrate.drift``): files on disk,
the tracker table, kei's log (every row's signature checked as it is read) and the
live schema digest; it appends each disagreement not yet recorded (``record``), and
also reports runs the log claimed without an outcome and partial MySQL runs. Neither
takes the migration lock: they change nothing in the target.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kei.adapters.migrate.folder import folder_names, write_new
from kei.app.ledger.ledger import Ledger
from kei.app.migrate.drifts import record_new
from kei.app.migrate.reports import Note, StatusReport, VerifyReport
from kei.app.migrate.session import observe, opened
from kei.domain.migrate.drift import disagreements
from kei.domain.migrate.history import History
from kei.domain.migrate.naming import new_files
from kei.domain.migrate.plan import Observation, entries


def migrate_status(ledger: Ledger | None, url: str, folder: Path) -> StatusReport:
    """Every version and what disagrees; nothing is appended or changed."""
    with opened(ledger, url, folder, lock=False) as s:
        with s.db.transaction() as tx:
            obs = observe(s, tx, s.history())
        return StatusReport(
            target=s.identity,
            stream=s.stream,
            entries=entries(obs),
            drift=disagreements(obs),
            interrupted=_interrupted(obs.history),
            logged=ledger is not None,
        )


def migrate_verify(ledger: Ledger, url: str, folder: Path, *, record: bool = True) -> VerifyReport:
    """The four-way comparison; new disagreements appended when ``record``."""
    with opened(ledger, url, folder, lock=False) as s:
        with s.db.transaction() as tx:
            obs = observe(s, tx, s.history())
        found = disagreements(obs)
        return VerifyReport(
            target=s.identity,
            stream=s.stream,
            drift=found,
            interrupted=_interrupted(obs.history),
            partial=_partial(obs),
            recorded=record_new(s, obs, found) if record else 0,
            schema=obs.schema,
        )


def migrate_create(folder: Path, name: str, now: datetime | None = None) -> tuple[Path, Path]:
    """Write ``<version>_<name>.sql`` and its ``.down.sql``; never overwrites."""
    files = new_files(name, now or datetime.now(UTC), folder_names(folder))
    return write_new(folder, files)


def _interrupted(history: History | None) -> list[Note]:
    if history is None:
        return []
    return [
        Note(
            v,
            f"{c.started.direction} run of {v} claimed at position {c.position} has no outcome "
            "(killed?); the next up or down reconciles it",
        )
        for v, c in sorted(history.open.items())
    ]


def _partial(obs: Observation) -> list[Note]:
    return [
        Note(
            s.version,
            f"{s.direction} run of {s.version} started {s.started_at} and did not finish: "
            "partial; resolve it with --resolve-partial",
        )
        for s in obs.started
    ]
