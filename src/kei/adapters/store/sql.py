"""The half of the two SQL stores that is the same code: ``SqlStore``.

Appends (handed to the store's recorder), reads, the verifier's scans, the read
models' queries, the stored Merkle subtree hashes, replaying verified rows, and the
mapping of driver errors onto kei's are
written once here, over the statements of a dialect (``dialect.py``: the same SQL
but for a few words, built once per database when this package is imported).
``SQLiteStore`` and ``PostgresStore`` keep only what really differs: connecting,
fetching rows (SQLite's are bytes as stored; PostgreSQL's verifier scans are read in
binary format), what a driver error means, creating tables, waiting for new events,
and SQLite's read-only and full-disk opening.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Unpack

from kei.adapters.store.base import (
    CHAIN_TABLE,
    EVENTS_TABLE,
    HEADS_TABLE,
    PAGE,
    TREE_TABLE,
    AppendOptions,
    Build,
    ChainEntry,
    PendingRecord,
)
from kei.adapters.store.dialect import Params, Statements
from kei.adapters.store.recording import ChainedRecorder
from kei.adapters.store.verbatim import Splitter, insert_verbatim, split_rows
from kei.adapters.store.versioned import Versioned
from kei.domain.events.fields import INT64_MAX
from kei.domain.log.heads import HeadRow, HeadSigner
from kei.domain.log.records import StoredRecord
from kei.errors import ConcurrencyError, StoreError

Row = tuple[Any, ...]


class SqlStore(Versioned):
    """What ``SQLiteStore`` and ``PostgresStore`` share: every method whose SQL is one
    statement of ``sql``, and how driver errors become kei's. A store sets the class
    attributes, ``name``, ``_datastore`` and ``recorder``, and says how it fetches rows
    (``_fetch``) and what a driver error means (``_failed``)."""

    sql: ClassVar[Statements]
    clash_errors: ClassVar[tuple[type[Exception], ...]]
    """The driver's and the library's "that key is taken"."""
    driver_errors: ClassVar[tuple[type[Exception], ...]]
    """Every other error of the driver and the library."""
    url: str
    name: str
    """How messages name the store (its file, or its redacted URL)."""
    recorder: ChainedRecorder
    _datastore: Any

    def _fetch(self, c: Any, sql: str, params: Params, binary: bool) -> list[Row]:
        """Run one query on the cursor ``c`` and fetch its rows as plain tuples; ``binary``
        asks for the columns' bytes as stored (the verifier's scans)."""
        raise NotImplementedError

    def _failed(self, exc: Exception, *, appending: bool = False) -> StoreError:
        """The kei error of a driver error (met while ``appending``, or not)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self.driver_errors as exc:
            raise self._failed(exc) from exc

    @contextlib.contextmanager
    def _appending(self) -> Iterator[None]:
        try:
            yield
        except self.clash_errors as exc:
            raise ConcurrencyError(f"a stream version was taken by another writer: {exc}") from exc
        except self.driver_errors as exc:
            raise self._failed(exc, appending=True) from exc

    def append(
        self, records: Sequence[PendingRecord], **options: Unpack[AppendOptions]
    ) -> list[ChainEntry]:
        self._refuse_if_behind()
        linked: list[ChainEntry] = []
        link = (options.get("guard"), options.get("sign_head"), linked)
        with self._appending():
            self.recorder.insert_pending(records, link)
        return linked

    def append_locked(
        self, streams: Sequence[str], build: Build, sign_head: HeadSigner | None = None
    ) -> list[ChainEntry]:
        self._refuse_if_behind()
        linked: list[ChainEntry] = []
        with self._appending():
            self.recorder.insert_locked(streams, build, (None, sign_head, linked))
        return linked

    def _rows(self, sql: str, params: Params = (), *, binary: bool = False) -> list[Row]:
        with self._errors(), self._datastore.transaction(commit=False) as c:
            return self._fetch(c, sql, params, binary)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        """A cursor in a transaction that commits."""
        with self._errors(), self._datastore.transaction(commit=True) as c:
            yield c

    def _value(self, sql: str, params: Params = ()) -> Any:
        return self._rows(sql, params)[0][0]

    def is_created(self) -> bool:
        return bool(self._value(self.sql.dialect.tables_created, (EVENTS_TABLE, CHAIN_TABLE)) == 2)

    def stream_version(self, stream: str) -> int:
        return int(self._value(self.sql.stream_version, (stream,)) or 0)

    def read(
        self, *, after: int = 0, limit: int = PAGE, upto: int | None = None
    ) -> list[StoredRecord]:
        if upto is None:
            rows = self._rows(self.sql.read, (after, limit))
        else:
            rows = self._rows(self.sql.read_upto, (after, upto, limit))
        return [record(r) for r in rows]

    def read_stream(self, stream: str, upto_version: int | None = None) -> list[StoredRecord]:
        if upto_version is None:
            return [record(r) for r in self._rows(self.sql.read_stream, (stream,))]
        rows = self._rows(self.sql.read_stream_upto, (stream, upto_version))
        return [record(r) for r in rows]

    def read_types(self, types: Sequence[str]) -> list[StoredRecord]:
        where, params = self.sql.dialect.any_of(types)
        sql = f"{self.sql.select}WHERE e.topic {where}{self.sql.by_position}"
        return [record(r) for r in self._rows(sql, params)]

    def last(self, n: int) -> list[StoredRecord]:
        return [record(r) for r in reversed(self._rows(self.sql.last, (n,)))]

    def max_position(self) -> int:
        return int(self._value(self.sql.max_position) or 0)

    def count(self) -> int:
        return int(self._value(self.sql.count))

    def chain_at(self, seq: int) -> ChainEntry | None:
        """``LogReader.chain_at``: the row at position ``seq + 1`` by primary key, the
        scan only when that row holds another sequence."""
        if seq < INT64_MAX:
            rows = self._rows(self.sql.chain_at_probe, (seq + 1, seq, seq))
        else:  # no position seq + 1 to probe
            rows = self._rows(self.sql.chain_at, (seq,))
        return entry(rows[0]) if rows else None

    def chain_size(self) -> int:
        found = self._value(self.sql.chain_size)
        return 0 if found is None else int(found) + 1

    def orphan_chain_entries(self) -> list[ChainEntry]:
        return [entry(r) for r in self._rows(self.sql.orphans)]

    def close(self) -> None:
        self._datastore.close()

    # -- verification scans (kei verify-chain) --------------------------------

    def scan(self, *, after: int, upto: int, limit: int) -> list[Row]:
        """Raw rows ``after < position <= upto`` for the verifier, as plain tuples.

        (position, stream, version, type, state, seq, prev_hash, hash), with text and
        blob columns as the exact bytes stored, so a verifier hashes what is on disk
        and a mangled value becomes a finding rather than a decode error here.
        """
        params = {"after": after, "upto": upto, "limit": limit}
        return self._rows(self.sql.scan, params, binary=True)

    def scan_types(self, types: Sequence[str]) -> list[Row]:
        """Raw rows (as ``scan``) of the given event types, in position order."""
        where, params = self.sql.dialect.any_of(types)
        sql = f"{self.sql.scan_select}WHERE e.topic {where}{self.sql.by_position}"
        return self._rows(sql, params, binary=True)

    def chain_count(self) -> int:
        """The number of chain rows (the verifier compares it with the rows it saw)."""
        return int(self._value(self.sql.chain_count))

    def next_position(self, after: int) -> int | None:
        """The lowest position above ``after`` (an index probe), None past the end."""
        found = self._value(self.sql.next_position, (after,))
        return None if found is None else int(found)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A read of the read models beside the log, as plain tuples (``?`` marks, so
        the same text serves both databases; kei's read queries hold no literal ``?``)."""
        mark = self.sql.dialect.mark
        return self._rows(sql if mark == "?" else sql.replace("?", mark), params)

    # -- stored Merkle subtree hashes (app/ledger/merkle_tree.py) ------------------------

    def has_tree_table(self) -> bool:
        return bool(self._value(self.sql.dialect.table_exists, (TREE_TABLE,)))

    def put_tree_nodes(self, rows: Sequence[tuple[int, int, bytes, int]]) -> None:
        with self._writing() as c:
            c.execute(self.sql.create_tree)
            if rows:
                c.executemany(self.sql.put_tree, rows)

    def read_heads(self, *, after: int, limit: int) -> list[HeadRow]:
        if not self._value(self.sql.dialect.table_exists, (HEADS_TABLE,)):
            return []
        return self._rows(self.sql.read_heads, (after, limit))

    # -- replay (kei replay) ---------------------------------------------------------

    def insert_stored(
        self,
        pages: Iterable[Sequence[Any]],
        *,
        head: ChainEntry | None,
        create: bool = False,
        split: Splitter = split_rows,
        heads: Iterable[HeadRow] = (),
    ) -> int:
        """Insert verified rows verbatim in one transaction (``verbatim.insert_verbatim``)."""
        self._refuse_if_behind()
        try:
            return insert_verbatim(
                self.recorder, pages, head, create=create, split=split, heads=heads
            )
        except self.clash_errors as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(
                f"{self.name} refused the replayed events ({first}); nothing was written"
            ) from exc
        except self.driver_errors as exc:
            raise self._failed(exc) from exc


def record(r: Row) -> StoredRecord:
    """A read row as a record (the driver may hand binary columns as memoryview)."""
    return StoredRecord(
        r[0], r[1], r[2], r[3], bytes(r[4]), r[5],
        None if r[6] is None else bytes(r[6]),
        None if r[7] is None else bytes(r[7]),
    )  # fmt: skip


def entry(r: Row) -> ChainEntry:
    return ChainEntry(int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]))
