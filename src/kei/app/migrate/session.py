"""Opening what every ``kei migrate`` command works on: the target, its folder, the log.

:func:`opened` parses the URL and reads the folder *before* anything connects or is
appended, so a hostile name, version or URL is one line and nothing happens; it
refuses kei's own store as a target (its schema is kei's to migrate, later, by the
store migrations of issue 20 item 1, and its tables change under kei's own writes);
then connects, takes the database-side lock and makes sure the tracker table exists
(as upstream does on every command). :func:`observe` reads the four sources at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from msgspec import Struct

from kei.adapters.migrate import DEFAULT_LOCK_TIMEOUT, open_target
from kei.adapters.migrate.base import TargetDatabase, Transaction
from kei.adapters.migrate.folder import read_folder
from kei.adapters.migrate.urls import TargetURL, parse_target
from kei.app.ledger.ledger import Ledger
from kei.app.migrate.recorder import Recorder
from kei.domain.migrate.history import History
from kei.domain.migrate.plan import Observation
from kei.domain.migrate.scripts import Script, build_scripts
from kei.errors import InputError, KeiError


class Session(Struct, frozen=True):
    """An open target with its scripts and the recorder of its stream."""

    db: TargetDatabase
    scripts: list[Script]
    recorder: Recorder | None

    @property
    def identity(self) -> str:
        return self.db.target.identity

    @property
    def stream(self) -> str:
        return self.db.target.stream

    def history(self) -> History | None:
        return None if self.recorder is None else self.recorder.history()


def target_of(ledger: Ledger | None, url: str) -> TargetURL:
    """``url`` parsed; refuses the ledger's own store."""
    parsed = parse_target(url)
    if ledger is not None:
        try:
            own = parse_target(ledger.url.text).target.identity
        except KeiError:
            own = None
        if own == parsed.target.identity:
            raise InputError(
                f"{parsed.target.identity} is kei's own store, not a target",
                hint="migrate another database; kei's own schema is not migrated this way",
            )
    return parsed


@contextmanager
def opened(
    ledger: Ledger | None,
    url: str,
    folder: Path | None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    create: bool = False,
    lock: bool = True,
) -> Iterator[Session]:
    """The target at ``url`` opened (and locked, unless ``lock`` is False), with the
    scripts of ``folder`` (None: none read)."""
    parsed = target_of(ledger, url)
    scripts = [] if folder is None else build_scripts(read_folder(folder))
    db = open_target(parsed, lock_timeout=lock_timeout, create=create)
    recorder = None if ledger is None else Recorder(ledger, parsed.target)
    try:
        if lock:
            with db.session_lock():
                db.ensure_tracker()
                yield Session(db, scripts, recorder)
        else:
            db.ensure_tracker()
            yield Session(db, scripts, recorder)
    finally:
        db.close()


def observe(session: Session, tx: Transaction, history: History | None) -> Observation:
    """The four sources as they stand, read in ``tx``."""
    return Observation(
        scripts=session.scripts,
        rows=tx.rows(),
        started=tx.started_rows(),
        schema=tx.schema_digest(),
        history=history,
    )
