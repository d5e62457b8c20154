"""Keeps read models (``kei.projections``) up to date, exactly once, from a verified log.

The engine shares the log's database: ``sqlite:///path`` as given, ``postgresql://``
through ``postgresql+psycopg://``. What it trusts and does:

- Nothing read from the log is trusted. The log is read through a ``LogFollower``
  (``kei.adapters.store.follow``) started at the stored ``seq``/``hash`` of the
  projection: each event's chain link and hash are checked before it is applied
  (``verify-chain`` steps 1-4). A break raises ``VerificationError`` with its
  position; the verified events before it in that page are committed, nothing at or
  after it ever is. Signatures are ``verify-chain``'s job.
- The state table ``kei_projections(name, version, position, seq, hash)`` records how
  far each projection got. Each page (at most ``COMMIT`` events) is applied in ONE
  transaction together with that row's update, so a crash or an error in ``apply``
  leaves the previous page's position and rows, and the next catch-up resumes
  exactly once. The update is conditional and runs first (``pages.commit_page``), so
  two engines catching up at once never apply a page twice.
- Projections at the same point share one read of the log; their pages commit
  together (an error in one rolls back the page for all of them).
- A projection whose stored version differs from its code is rebuilt: its tables are
  dropped and re-created and its row reset in one transaction, then it catches up
  from zero. ``rebuild`` does the same on request. A reset leaves out the indexes
  only queries read (``deferred_index``); whichever engine next finishes a catch-up
  builds the missing ones, so a rebuild pays one sort per index instead of a
  million random inserts, and a crash mid-rebuild cannot leave them missing.
- Every catch-up first checks that the log still holds the event each projection
  last folded, and given a ``seal_key`` each projection's seal
  (``kei.adapters.readmodels.trust``); one that fails is rebuilt from the log, with a
  warning logged, and what changed is sealed again. Without a key rows edited in
  place go unnoticed until ``kei projections verify``.
- Errors from SQLAlchemy and the drivers stop here as a one-line ``StoreError``.
  An exception raised by a projection's own code propagates unchanged.

Example::

    engine = ProjectionEngine(url, ledger.store, [EventCounts()])
    rows = [(s.name, s.position, s.digest.hex()) for s in engine.status()]  # catches up
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kei.adapters.readmodels import seal as projection_seal
from kei.adapters.readmodels import trust
from kei.adapters.readmodels.db import (
    STATE_TABLE,
    bookkeeping,
    driver_errors,
    lock_schema,
    make_engine,
)
from kei.adapters.readmodels.db import state_table as _state
from kei.adapters.readmodels.pages import commit_page
from kei.adapters.readmodels.state import (
    Cursor,
    ProjectionStatus,
    StateRow,
    create_state,
    reset_state,
    state_rows,
)
from kei.adapters.store.base import PAGE, EventStore
from kei.adapters.store.follow import LogFollower
from kei.adapters.store.urls import StoreURL
from kei.domain.log.records import StoredRecord
from kei.errors import ConcurrencyError, InputError
from kei.projections import faults
from kei.projections.base import Projection, deferred_indexes
from kei.projections.digest import state_digest

__all__ = ["STATE_TABLE", "ProjectionEngine", "ProjectionStatus"]

log = logging.getLogger(__name__)
# Events per catch-up transaction (a page): a few store pages, so a rebuild commits
# (and pays per-statement costs) once per 5,000 events; memory stays a few MB.
COMMIT = 5 * PAGE


class ProjectionEngine:
    """Catches projections up with the log and answers for their state.

    ``scratch``: ``url`` is a SQLite file private to this engine, thrown away unless
    the work succeeds (``make_engine``). ``seal_key``: the secret that seals the read
    models (``kei.adapters.readmodels.seal_key``); None checks them against the log only.
    ``schema``: keep every table in this PostgreSQL schema (a shadow rebuild's).
    """

    def __init__(
        self,
        url: str | StoreURL,
        store: EventStore,
        projections: Iterable[Projection],
        *,
        page_size: int = COMMIT,
        scratch: bool = False,
        seal_key: bytes | None = None,
        schema: str | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.store = store
        self.page_size = page_size
        self.projections: dict[str, Projection] = {}
        self.tables: dict[str, list[sa.Table]] = {}
        self._metadata: dict[str, sa.MetaData] = {}
        self._indexed: set[str] = set()  # deferred indexes known to exist
        self._fed: Cursor | None = None  # where apply_checked left every projection
        self._seal_key = seal_key
        for p in projections:
            self._add(p)
        with self._errors("open"):
            self._engine = make_engine(url, scratch=scratch, schema=schema)
            with self._engine.begin() as conn:
                lock_schema(conn)
                bookkeeping.create_all(conn)
                for name in self.projections:
                    create_state(conn, self.projections[name], self._metadata[name])

    def _add(self, p: Projection) -> None:
        if p.name in self.projections:
            raise ValueError(f"two projections are named {p.name!r}")
        metadata = sa.MetaData()
        tables = p.define(metadata)
        for t in tables:
            if not t.name.startswith(p.name + "_"):
                raise ValueError(f"projection {p.name} table {t.name} must start with {p.name}_")
        self.projections[p.name], self.tables[p.name] = p, tables
        self._metadata[p.name] = metadata

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def connect(self, doing: str) -> Iterator[Connection]:
        """A connection to read the read models' tables (no catch-up); driver errors
        become ``StoreError("<doing>: ...")``."""
        with driver_errors(doing), self._engine.connect() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return driver_errors(f"projections in {self.store.url}: {doing} failed")

    def _names(self, names: Sequence[str] | None) -> list[str]:
        if names is None:
            return list(self.projections)
        unknown = [n for n in names if n not in self.projections]
        if unknown:
            known = ", ".join(sorted(self.projections))
            raise InputError(f"no projection named {unknown[0]!r}", hint=f"known: {known}")
        return list(dict.fromkeys(names))

    # -- state -----------------------------------------------------------------

    def _rows(self, names: Sequence[str]) -> list[StateRow]:
        return state_rows(self._engine, names)

    def _cursors(self, names: Sequence[str]) -> dict[str, Cursor]:
        return {r.name: r.cursor for r in self._rows(names)}

    def _reset_all(self, names: Sequence[str]) -> None:
        self._fed = None
        with self._engine.begin() as conn:
            lock_schema(conn)
            for n in names:
                self._reset(conn, n)

    def _reset(self, conn: Connection, name: str) -> None:
        """Reset ``name``'s state and tables (caller's transaction; ``reset_state``)."""
        reset_state(conn, self.projections[name], self._metadata[name], self.tables[name])
        self._indexed.discard(name)

    # -- catching up -------------------------------------------------------------

    def catch_up(self, names: Sequence[str] | None = None) -> int:
        """Apply every verified event after each projection's position; returns how many
        events were applied. VerificationError at the first break in the chain."""
        chosen = self._names(names)
        with self._errors("catch-up"):
            if self._seal_key is None:
                read = self._catch_up(chosen)
            else:
                with projection_seal.one_sealer(self._engine):
                    read = self._catch_up(chosen)
            with self._engine.begin() as conn:  # events a read model skipped: warn on every read
                faults.report(conn, {n: self.tables[n] for n in chosen})
            return read

    def _catch_up(self, chosen: list[str]) -> int:
        rows, sealed = self._trusted(chosen)
        cursors = {n: r.cursor for n, r in rows.items()}
        read = 0
        while cursors:
            groups: dict[Cursor, list[str]] = {}
            for n, c in cursors.items():
                groups.setdefault(c, []).append(n)
            # The group furthest behind runs up to the next one, and they merge.
            cursor, members = min(groups.items(), key=lambda g: g[0].position)
            ahead = [c.position for c in groups if c.position > cursor.position]
            upto = min(ahead) if ahead else None
            n_read, finished = self._run(cursor, members, upto=upto)
            if finished and upto is not None and n_read == 0:  # upto not reachable
                n_read, finished = self._run(cursor, members, upto=None)
                upto = None
            read += n_read
            if finished and upto is None:
                cursors = {n: c for n, c in cursors.items() if n not in members}
            if cursors:  # where everyone stands now (another engine may have moved them)
                cursors = self._cursors(list(cursors))
        self._build_deferred(chosen)
        if self._seal_key is not None:
            now = self._rows(chosen)
            self._seal([r.name for r in now if sealed.get(r.name) != r.position])
        return read

    def _trusted(self, chosen: list[str]) -> tuple[dict[str, StateRow], dict[str, int]]:
        """The state rows of ``chosen`` once each can be trusted (rebuilt when its version
        changed, its row is off the log or its seal fails), and the position each good
        seal was checked at."""
        fed, self._fed = self._fed, None  # apply_checked reads where everyone stands again
        rows = {r.name: r for r in self._rows(chosen)}
        stale = [
            n for n in chosen if n not in rows or rows[n].version != self.projections[n].version
        ]
        if stale:
            log.info("projection version changed, rebuilding: %s", ", ".join(stale))
            self._reset_all(stale)
            rows = {r.name: r for r in self._rows(chosen)}
        # Where apply_checked left them was folded from records its caller holds (a
        # replay's bundle), which the store read here may not hold yet.
        bad = trust.off_log(self.store, (r for r in rows.values() if r.cursor != fed))
        sealed = {}
        if self._seal_key is not None:
            sealed = trust.check_seals(self._engine, self._seal_key, self.tables, chosen, bad)
        if bad:
            found = "; ".join(f"{n}: {why}" for n, why in bad.items())
            log.warning("read models rebuilt from the log, they disagreed with it: %s", found)
            self._reset_all(list(bad))
            rows = {r.name: r for r in self._rows(chosen)}
        return rows, sealed

    def _build_deferred(self, names: list[str]) -> None:
        """Build the deferred indexes a rebuild dropped (checked once per engine)."""
        todo = [n for n in names if n not in self._indexed]
        indexes = [i for n in todo for i in deferred_indexes(self.tables[n])]
        if indexes:
            with self._engine.begin() as conn:
                lock_schema(conn)
                for index in indexes:
                    index.create(conn, checkfirst=True)
        self._indexed.update(todo)

    def _run(self, cursor: Cursor, names: list[str], *, upto: int | None) -> tuple[int, bool]:
        """Catch ``names`` (all at ``cursor``) up to ``upto`` (or the end), one
        transaction per page of ``page_size`` events; returns the events applied and
        False when another engine moved them first."""
        follower = LogFollower(self.store, cursor.link, position=cursor.position, upto=upto)
        read = 0
        while True:
            records = self._gather(follower)
            if records:
                moved = commit_page(self._engine, self.projections, cursor, names, records)
                if moved is None:
                    return read, False
                cursor, read = moved, read + len(records)
            if follower.broken is not None:
                raise follower.error("projection catch-up")
            if follower.fetched == 0:
                return read, True

    def _gather(self, follower: LogFollower) -> list[StoredRecord]:
        """The verified records of the next page (read in store pages), up to a break or
        the log's end (a store read that came back empty; a short read is not the end: a
        view over two stores reads each in turn)."""
        out: list[StoredRecord] = []
        while len(out) < self.page_size:
            out += follower.read(min(self.page_size - len(out), PAGE))
            if follower.broken is not None or follower.fetched == 0:
                break
        return out

    def apply_checked(self, records: list[StoredRecord]) -> None:
        """Fold ``records`` (the events right after where every projection stands, in
        order) into all projections in one transaction, without reading or checking
        them.

        For a caller that holds the events already and has them verified elsewhere
        before it trusts the result: replay folds a bundle's rows while its workers
        check them, and throws this database away unless every row verifies. Everyone
        else catches up, which checks each link and hash first.
        """
        if not records:
            return
        names = list(self.projections)
        with self._errors("fold"):
            cursor = self._fed or self._one_cursor(names)
            if records[0].position <= cursor.position:
                raise ValueError(
                    f"position {records[0].position} does not follow {cursor.position}"
                )
            moved = commit_page(self._engine, self.projections, cursor, names, records)
        if moved is None:
            raise ConcurrencyError("another engine changed the projections being folded")
        self._fed = moved

    def _one_cursor(self, names: list[str]) -> Cursor:
        cursors = set(self._cursors(names).values())
        if len(cursors) != 1:
            raise ValueError("apply_checked needs every projection at one position")
        return cursors.pop()

    # -- checks, seals, rebuilding and status ------------------------------------------

    def off_log(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Why each of ``names`` disagrees with the log (``trust.off_log``); no catch-up."""
        chosen = self._names(names)
        with self._errors("check"):
            return trust.off_log(self.store, self._rows(chosen))

    def seal(self, names: Sequence[str] | None = None) -> None:
        """Seal read models as they stand, without checking them first: for a caller
        that has just checked them itself (a replay compares each with the digest the
        bundle's signed manifest names). Needs a ``seal_key``."""
        if self._seal_key is None:
            raise ValueError("sealing needs a seal_key")
        chosen = self._names(names)
        with self._errors("seal"), projection_seal.one_sealer(self._engine):
            self._seal(chosen)

    def _seal(self, names: Sequence[str]) -> None:
        assert self._seal_key is not None
        trust.seal(self._engine, self._seal_key, self.tables, names)

    def rebuild(self, names: Sequence[str] | None = None) -> int:
        """Drop the tables and state of ``names`` in one transaction and catch up from zero."""
        chosen = self._names(names)
        with self._errors("rebuild"):
            self._reset_all(chosen)
        return self.catch_up(chosen)

    def status(self, names: Sequence[str] | None = None) -> list[ProjectionStatus]:
        """Catch up, then each projection's version, position and state digest."""
        chosen = self._names(names)
        self.catch_up(chosen)
        out = []
        with self._errors("status"), self._engine.begin() as conn:
            rows = conn.execute(sa.select(_state).where(_state.c.name.in_(chosen))).all()
            by_name = {r.name: r for r in rows}
            for n in chosen:
                digest = state_digest(conn, self.tables[n])
                out.append(ProjectionStatus(n, by_name[n].version, by_name[n].position, digest))
        return out

    def states(self) -> dict[str, tuple[int, int]]:
        """Each projection's stored (version, position), as they are (no catch-up)."""
        with self._errors("status"):
            return {r.name: (r.version, r.position) for r in self._rows(list(self.projections))}

    def digest(self, name: str) -> bytes:
        """The digest of one projection's state as it is now (no catch-up)."""
        self._names([name])
        with self._errors("digest"), self._engine.begin() as conn:
            return state_digest(conn, self.tables[name])


@contextmanager
def default_engine(url: str, seal_key: bytes | None = None) -> Iterator[ProjectionEngine]:
    """The default read models of the store at ``url``, with the store opened for them
    and both closed afterwards (replay and import catch the target up this way)."""
    from kei.adapters.store import open_store
    from kei.projections.registry import default_projections

    store = open_store(url)
    try:
        engine = ProjectionEngine(url, store, default_projections(), seal_key=seal_key)
        try:
            yield engine
        finally:
            engine.close()
    finally:
        store.close()
