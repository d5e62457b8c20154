"""The scratch store a bundle is read into before anything reaches the target.

A ``Staging`` is a scratch folder (``scratch.py``: one a killed run leaves behind is
removed by the next) holding a SQLite store (``stage.db``) into which
the bundle's rows are inserted verbatim as they are read, so they can be verified in
worker processes (which open it by URL) and read back in pages; memory stays flat
however large the bundle. Durability is off while staging: the folder is thrown
away, except when ``move_to`` makes the staged database the target itself (a replay
into a SQLite file that does not exist yet), which switches it to WAL (as every kei
store is) and fsyncs it first, then links it into place in one step.

A replay's stage is opened by this process only, so it keeps its rollback journal
in memory (``journal="MEMORY"``) and writes each page once; ``kei events import``
has verification workers open it by URL, so it stays WAL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError as ESIntegrityError

from kei.adapters.store.base import PAGE, ChainEntry
from kei.adapters.store.sqlite import SQLiteStore
from kei.adapters.store.sqlite_recorder import copy_heads
from kei.adapters.store.verbatim import split_records
from kei.adapters.workers import scratch
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.errors import BundleError, ConcurrencyError, InputError, StoreError


class Staging:
    """A temporary folder with a staging store; ``close`` removes it (``with
    contextlib.closing(Staging(...))``)."""

    def __init__(self, folder: Path | None, *, journal: str = "WAL") -> None:
        try:
            self._tmp = scratch.make(folder, "stage")
        except OSError as exc:
            where = folder or Path(tempfile.gettempdir())
            raise InputError(
                f"cannot create a scratch folder in {where}: {exc.strerror or exc}",
                hint="replay needs room beside the target (or in $TMPDIR) for the bundle",
            ) from exc
        self.folder = Path(self._tmp.name)
        self.path = self.folder / "stage.db"
        self.url = f"sqlite:///{self.path}"
        self.store = SQLiteStore(self.path, synchronous="OFF", create=True, journal=journal)
        self._open = True
        self._head: ChainEntry | None = None

    def close(self) -> None:
        if self._open:
            self.store.close()
            self._open = False
        self._tmp.cleanup()

    def load(self, pages: Iterable[list[Any]]) -> int:
        """Insert the rows of ``pages`` (read from the bundle) as they come."""
        with _one_event_per_version():
            return self.store.insert_stored(pages, head=None, create=True)

    def put_heads(self, heads: Sequence[HeadRow]) -> None:
        """Add checked signed head rows, before ``move_to`` makes this the target."""
        if heads:
            with self.store.recorder.datastore.transaction(commit=True) as c:
                copy_heads(c, heads)

    def append(self, records: Sequence[StoredRecord]) -> None:
        """Stage the next records in a transaction of their own, so they can be read
        back (a range whose edge does not join is re-checked from here) while the rest
        of the bundle is still being read."""
        if not records:
            return
        with _one_event_per_version():
            self.store.insert_stored(
                [records], head=self._head, create=self._head is None, split=split_records
            )
        last = records[-1]
        assert last.seq is not None and last.prev_hash is not None and last.hash is not None
        self._head = ChainEntry(last.position, last.seq, last.prev_hash, last.hash)

    def rows_after(self, position: int) -> Iterator[list[tuple[Any, ...]]]:
        """The staged rows after ``position``, a page at a time."""
        after, top = position, self.store.max_position()
        while after < top:
            rows = self.store.scan(after=after, upto=top, limit=PAGE)
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def move_to(self, destination: Path) -> None:
        """Make the staged database the file ``destination`` (which must not exist)."""
        self.store.close()
        self._open = False
        conn = sqlite3.connect(self.path)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot finish the staged database {self.path} ({exc}); nothing was written"
            ) from exc
        finally:
            conn.close()
        if busy or str(mode).lower() != "wal":
            raise StoreError(
                f"the staged database {self.path} is still in use; nothing was written"
            )
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(self.path, destination)  # fails if destination exists: never overwrite
        except FileExistsError as exc:
            raise ConcurrencyError(
                f"{destination} was created while the bundle was checked; nothing was written",
                hint="run the replay again",
            ) from exc
        except OSError as exc:
            raise StoreError(f"cannot create {destination}: {exc.strerror or exc}") from exc
        dir_fd = os.open(destination.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def _one_event_per_version() -> Iterator[None]:
    """Staged rows that collide on (stream, version) or position are the bundle's
    fault (a changed byte can make two events claim one version), refused as such."""
    try:
        yield
    except StoreError as exc:
        if not isinstance(exc.__cause__, (sqlite3.IntegrityError, ESIntegrityError)):
            raise
        raise BundleError(
            "the bundle holds two events with one stream version or one position",
            kind="events",
        ) from exc
