"""Keeps read models (``kei.projections``) up to date, exactly once, from a verified log.

The engine shares the log's database: ``sqlite:///path`` as given, ``postgresql://``
through ``postgresql+psycopg://``. What it trusts and does:

- Nothing read from the log is trusted. Before an event is applied its chain link to
  the event before it is checked (sequence and previous hash, ``verify-chain`` steps
  2-3, starting from the stored ``seq``/``hash`` of the projection) and its hash is
  recomputed from the stored bytes (step 4). A break raises ``VerificationError`` with
  its position; the verified events before it in that page are committed, nothing at
  or after it ever is. Signatures are ``verify-chain``'s job.
- The state table ``kei_projections(name, version, position, seq, hash)`` records how
  far each projection got. Each page (at most ``PAGE`` events) is applied in ONE
  transaction together with that row's update, so a crash or an error in ``apply``
  leaves the previous page's position and rows, and the next catch-up resumes
  exactly once.
- The row update is conditional (``WHERE position = <what we read>``) and runs first
  in the transaction, so two engines catching up at once never apply a page twice:
  the loser finds zero rows updated, rolls back, and re-reads where to start.
- Projections at the same point share one read of the log; their pages commit
  together (an error in one rolls back the page for all of them).
- A projection whose stored version differs from its code is rebuilt: its tables are
  dropped and re-created and its row reset in one transaction, then it catches up
  from zero. ``rebuild`` does the same on request. A reset leaves out the indexes
  only queries read (``deferred_index``); whichever engine next finishes a catch-up
  builds the missing ones, so a rebuild pays one sort per index instead of a
  million random inserts, and a crash mid-rebuild cannot leave them missing.
- Every catch-up first checks that the log still holds the event each projection
  last folded (same position, ``seq`` and hash as its state row); a projection whose
  state row names an event the log does not hold (a truncated log, an edited state
  row) or stands past the log's end is rebuilt from the log, with a warning logged.
- Given a ``seal_key``, every catch-up also checks each projection's seal (its state
  digest authenticated with an HMAC, ``kei.adapters.readmodels.seal``) before it
  trusts or extends its rows, rebuilds from the log one that does not match (with a
  warning logged), and re-seals what it changed. Without a key only the check above
  runs: rows edited in place go unnoticed until ``kei projections verify``.
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
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kei.adapters.readmodels import seal as projection_seal
from kei.adapters.readmodels.db import (
    SNAPSHOT,
    STATE_TABLE,
    driver_errors,
    lock_schema,
    make_engine,
)
from kei.adapters.readmodels.db import state_table as _state
from kei.adapters.readmodels.seal import Sealed, seal_table
from kei.adapters.store.base import PAGE, EventStore
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link, first_break
from kei.errors import ConcurrencyError, InputError, VerificationError
from kei.projections import faults
from kei.projections.base import Projection, apply_page, deferred_indexes, wants
from kei.projections.digest import state_digest

__all__ = ["STATE_TABLE", "ProjectionEngine", "ProjectionStatus"]

log = logging.getLogger(__name__)
# Events per catch-up transaction (a page): a few store pages, so a rebuild commits
# (and pays per-statement costs) once per 5,000 events; memory stays a few MB.
COMMIT = 5 * PAGE


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    version: int
    position: int
    digest: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "position": self.position,
            "digest": "sha256:" + self.digest.hex(),
        }


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where a projection stands: its last applied position and that event's link."""

    position: int
    seq: int | None
    hash: bytes | None

    @property
    def link(self) -> Link | None:
        return None if self.seq is None else Link(self.position, self.seq, self.hash)


class ProjectionEngine:
    """Catches projections up with the log and answers for their state.

    ``scratch``: ``url`` is a SQLite file private to this engine, thrown away unless
    the work succeeds (``make_engine``). ``seal_key``: the secret that seals the read
    models (``kei.adapters.readmodels.seal_key``); None checks them against the log only.
    """

    def __init__(
        self,
        url: str,
        store: EventStore,
        projections: Iterable[Projection],
        *,
        page_size: int = COMMIT,
        scratch: bool = False,
        seal_key: bytes | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.store = store
        self.page_size = page_size
        self.projections: dict[str, Projection] = {}
        self.tables: dict[str, list[sa.Table]] = {}
        self._metadata: dict[str, sa.MetaData] = {}
        self._indexed: set[str] = set()  # deferred indexes known to exist
        self._fed: _Cursor | None = None  # where apply_checked left every projection
        self._seal_key = seal_key
        for p in projections:
            self._add(p)
        with self._errors("open"):
            self._engine = make_engine(url, scratch=scratch)
            with self._engine.begin() as conn:
                lock_schema(conn)
                _state.metadata.create_all(conn)
                seal_table.metadata.create_all(conn)
                for name in self.projections:
                    self._create(conn, name)

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

    def _create(self, conn: Connection, name: str) -> None:
        """Create the tables and a zero state row unless they exist."""
        p = self.projections[name]
        self._metadata[name].create_all(conn)
        found = conn.execute(sa.select(_state.c.name).where(_state.c.name == name)).first()
        if found is None:
            conn.execute(_state.insert().values(name=name, version=p.version, position=0))

    def _reset(self, conn: Connection, name: str) -> None:
        """Reset the state row, drop and re-create the tables (caller's transaction).

        The state row goes first: a page being applied holds it before it touches the
        tables, so both take their locks in the same order and cannot deadlock.
        """
        conn.execute(_state.delete().where(_state.c.name == name))
        conn.execute(seal_table.delete().where(seal_table.c.name == name))
        self._metadata[name].drop_all(conn)
        _drop_retired(conn, self.projections[name])
        self._metadata[name].create_all(conn)
        for index in deferred_indexes(self.tables[name]):
            index.drop(conn)
        self._indexed.discard(name)
        version = self.projections[name].version
        conn.execute(_state.insert().values(name=name, version=version, position=0))

    def _rows(self, names: Sequence[str]) -> list[_StateRow]:
        """The state rows of ``names``, in the engine's own database (which is not the
        store's when a view is caught up into a scratch database), in plain SQL: a
        catch-up starts with this read, and SQLAlchemy's statement building cost more
        than the read."""
        marks = ",".join("?" * len(names))
        sql = (
            f"SELECT name, version, position, seq, hash FROM {STATE_TABLE} WHERE name IN ({marks})"
        )
        with self._engine.begin() as conn:
            found = conn.exec_driver_sql(_driver_sql(conn, sql), tuple(names)).all()
        return [_StateRow(n, v, p, s, None if h is None else bytes(h)) for n, v, p, s, h in found]

    def _cursors(self, names: Sequence[str]) -> dict[str, _Cursor]:
        return {r.name: _Cursor(r.position, r.seq, r.hash) for r in self._rows(names)}

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
        bad = self._off_log(r for r in rows.values() if fed is None or _point(r) != fed)
        sealed = {} if self._seal_key is None else self._check_seals(chosen, bad)
        if bad:
            found = "; ".join(f"{n}: {why}" for n, why in bad.items())
            log.warning("read models rebuilt from the log, they disagreed with it: %s", found)
            self._reset_all(list(bad))
            rows = {r.name: r for r in self._rows(chosen)}
        cursors = {n: _Cursor(r.position, r.seq, r.hash) for n, r in rows.items()}
        read = 0
        while cursors:
            groups: dict[_Cursor, list[str]] = {}
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

    # -- checking against the log and the seals ------------------------------------

    def off_log(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Why each of ``names`` disagrees with the log (see ``_off_log``); no catch-up."""
        chosen = self._names(names)
        with self._errors("check"):
            return self._off_log(self._rows(chosen))

    def _off_log(self, rows: Iterable[_StateRow]) -> dict[str, str]:
        """The projections whose state row names an event the log does not hold at
        that position (same seq and hash), and why: one read of the log per point."""
        out: dict[str, str] = {}
        seen: dict[tuple[int, int | None, bytes | None], str | None] = {}
        for r in rows:
            point = (r.position, r.seq, r.hash)
            if point not in seen:
                seen[point] = self._holds(*point)
            why = seen[point]
            if why is not None:
                out[r.name] = why
        return out

    def _holds(self, position: int, seq: int | None, hash: bytes | None) -> str | None:
        """Why the log does not hold the event (position, seq, hash); None if it does."""
        if position == 0 and seq is None and hash is None:
            return None
        if position <= 0:
            return f"its state row is malformed (position {position}, seq {seq})"
        found = self.store.read(after=position - 1, limit=1)
        if not found or found[0].position != position:
            return (
                f"it last folded position {position}, which the log does not hold "
                "(truncated log, or an edited state row)"
            )
        if found[0].seq != seq or found[0].hash != hash:
            return f"the event at position {position} is not the one it folded"
        return None

    def _check_seals(self, names: list[str], bad: dict[str, str]) -> dict[str, int]:
        """Check the seal of each of ``names`` not already in ``bad``; add the ones
        that fail to ``bad``; return the position each good seal was checked at."""
        assert self._seal_key is not None
        good: dict[str, int] = {}
        for n in names:
            if n in bad:
                continue
            with self._reading() as conn:
                state = self._locked_state(conn, n)
                why, _ = projection_seal.check(conn, self._seal_key, state, self.tables[n])
            if why is None:
                good[n] = state.position
            else:
                bad[n] = why
        return good

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
        """Seal each of ``names`` as it stands: its digest read in one snapshot (SQLite)
        or with its state row locked (PostgreSQL), the seal written only if the state
        row has not moved since. An edit made after the snapshot is not in the seal,
        so the next check finds it."""
        assert self._seal_key is not None
        for n in names:
            with self._reading() as conn:
                state = self._locked_state(conn, n)
                digest = state_digest(conn, self.tables[n])
                if conn.dialect.name == "postgresql":  # the row lock keeps it as read
                    projection_seal.store(conn, self._seal_key, state, digest)
                    continue
            with self._engine.begin() as conn:
                if self._locked_state(conn, n) == state:
                    projection_seal.store(conn, self._seal_key, state, digest)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A transaction for a digest: on SQLite a read snapshot (no write lock while
        it runs, so the log's writers go on); on PostgreSQL an ordinary one."""
        with self._engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.execution_options(**{SNAPSHOT: True})
            with conn.begin():
                yield conn

    def _locked_state(self, conn: Connection, name: str) -> Sealed:
        """``name``'s state row; on PostgreSQL held until the transaction ends, so no
        page commits between it and a digest (a SQLite transaction is one snapshot)."""
        sql = f"SELECT name, version, position, seq, hash FROM {STATE_TABLE} WHERE name = ?"
        if conn.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        row = conn.exec_driver_sql(_driver_sql(conn, sql), (name,)).one()
        n, v, p, s, h = row
        return Sealed(n, v, p, s, None if h is None else bytes(h))

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

    def _run(self, cursor: _Cursor, names: list[str], *, upto: int | None) -> tuple[int, bool]:
        """Catch ``names`` (all at ``cursor``) up to ``upto`` (or the end), one
        transaction per page of ``page_size`` events; returns the events applied and
        False when another engine moved them first."""
        read = 0
        while True:
            records, broken, ended = self._gather(cursor, upto)
            if records:
                moved = self._commit_page(cursor, names, records)
                if moved is None:
                    return read, False
                cursor, read = moved, read + len(records)
            if broken is not None:
                raise broken
            if ended:
                return read, True

    def _gather(
        self, cursor: _Cursor, upto: int | None
    ) -> tuple[list[StoredRecord], VerificationError | None, bool]:
        """The verified records of the page after ``cursor`` (read in store pages), the
        break that stopped them, if any, and whether the log ended (a store read came
        back empty; a short read is not the end: a view over two stores reads each in
        turn)."""
        out: list[StoredRecord] = []
        while len(out) < self.page_size:
            limit = min(self.page_size - len(out), PAGE)
            records = self.store.read(after=cursor.position, limit=limit, upto=upto)
            if not records:
                return out, None, True
            good, broken = _verified(records, cursor.link)
            out += good
            if broken is not None:
                return out, broken, True
            last = records[-1]
            cursor = _Cursor(last.position, last.seq, last.hash)
        return out, None, False

    def _commit_page(
        self, cursor: _Cursor, names: list[str], records: list[StoredRecord]
    ) -> _Cursor | None:
        """Claim the page (conditional state update), apply it, commit; None if lost."""
        last = records[-1]
        moved = _Cursor(last.position, last.seq, last.hash)
        pages = self._route(names, records)
        try:
            with self._engine.begin() as conn:
                for n in names:
                    version = self.projections[n].version
                    params = (moved.position, moved.seq, moved.hash, n, cursor.position, version)
                    claimed = conn.exec_driver_sql(_driver_sql(conn, _CLAIM), params)
                    if claimed.rowcount != 1:
                        raise _LostRaceError
                for n, page in pages.items():
                    if page:
                        apply_page(conn, self.projections[n], page)
        except _LostRaceError:
            log.info("another engine applied page after %s first", cursor.position)
            return None
        return moved

    def _route(
        self, names: list[str], records: list[StoredRecord]
    ) -> dict[str, list[RecordedEvent]]:
        """Each projection's events of the page, each event opened once, in log order."""
        pages: dict[str, list[RecordedEvent]] = {n: [] for n in names}
        routes = {
            t: [pages[n] for n in names if wants(self.projections[n], t)]
            for t in {r.type for r in records}
        }
        for r in records:
            targets = routes[r.type]
            if targets:
                event = RecordedEvent.from_record(r)
                for page in targets:
                    page.append(event)
        return pages

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
            moved = self._commit_page(cursor, names, records)
        if moved is None:
            raise ConcurrencyError("another engine changed the projections being folded")
        self._fed = moved

    def _one_cursor(self, names: list[str]) -> _Cursor:
        cursors = set(self._cursors(names).values())
        if len(cursors) != 1:
            raise ValueError("apply_checked needs every projection at one position")
        return cursors.pop()

    # -- rebuilding and status -----------------------------------------------------

    def _reset_all(self, names: Sequence[str]) -> None:
        self._fed = None
        with self._engine.begin() as conn:
            lock_schema(conn)
            for n in names:
                self._reset(conn, n)

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


_CLAIM = (
    f"UPDATE {STATE_TABLE} SET position = ?, seq = ?, hash = ? "
    "WHERE name = ? AND position = ? AND version = ?"
)


def _driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` (written with ``?``) in the driver's own parameter style. The state reads
    and the page claim run on every catch-up; built through SQLAlchemy they cost more
    than the rest of a catch-up that finds one new event."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def _drop_retired(conn: Connection, p: Projection) -> None:
    """Drop the tables an earlier version of ``p`` had and this one does not."""
    quote = conn.dialect.identifier_preparer.quote
    for table in getattr(p, "retired", ()):
        if not table.startswith(p.name + "_"):
            raise ValueError(f"projection {p.name} cannot retire table {table}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(table)}")


def _point(row: _StateRow) -> _Cursor:
    return _Cursor(row.position, row.seq, row.hash)


class _StateRow(NamedTuple):
    name: str
    version: int
    position: int
    seq: int | None
    hash: bytes | None


class _LostRaceError(Exception):
    """Another engine advanced the projection first; roll the page back."""


def _verified(
    records: list[StoredRecord], link: Link | None
) -> tuple[list[StoredRecord], VerificationError | None]:
    """The records that link and hash correctly, up to the first break, and that break."""
    i, f = first_break(records, link)
    if f is None:
        return records, None
    error = VerificationError(
        f"projection catch-up stopped at position {f.position}: {f.kind.value}: {f.detail}",
        position=f.position,
        kind=f.kind.value,
    )
    return records[:i], error


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
