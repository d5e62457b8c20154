"""What every event store offers the ledger: raw bytes in, raw records out.

Stores never interpret payloads and never verify; they append atomically, link each
new entry into the chain under the store's write lock, and hand back unverified
``StoredRecord`` rows. Third-party exceptions stop here and become ``StoreError``
or ``ConcurrencyError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TypedDict, Unpack

from kei.domain.log.heads import HeadRow, HeadSigner
from kei.domain.log.records import StoredRecord

EVENTS_TABLE = "kei_events"
CHAIN_TABLE = "kei_chain"
TREE_TABLE = "kei_merkle_nodes"
"""Stored Merkle subtree hashes (``app/ledger/merkle_tree.py``); a cache, never trusted."""
HEADS_TABLE = "kei_heads"
"""One signed head per append transaction (``kei.domain.log.heads``)."""
PAGE = 1000
Guard = tuple[str, int]  # (stream, version): the stream must end there, or no append


class AppendOptions(TypedDict, total=False):
    """What an append may add to its records, by name only: two optional values of
    different kinds passed by position are one transposition away from an unguarded
    write."""

    guard: Guard | None
    sign_head: HeadSigner | None


class PendingRecord(NamedTuple):
    """A sealed event on its way into the store: a tuple in the column order of the
    events table's insert, so a batch goes to the driver as it is (no row copies)."""

    stream: str
    version: int
    type: str
    state: bytes


class ChainEntry(NamedTuple):
    """One chain row, in the column order of its insert (``position, seq, prev_hash,
    hash``), so a batch's entries go to the driver as they are."""

    position: int
    seq: int
    prev_hash: bytes
    hash: bytes


Build = Callable[[dict[str, int]], Sequence[PendingRecord]]
"""What ``append_locked`` appends: records made from the ends of the streams it read."""


class Waiter(Protocol):
    """Blocks until the store may hold new events (NOTIFY) or a timeout passes."""

    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class LogWriter(Protocol):
    """The write half of the storage seam: appends, replayed rows, and the caches and
    tables beside the log."""

    def create(self) -> None:
        """Create tables if they are missing (idempotent)."""

    def append(
        self, records: Sequence[PendingRecord], **options: Unpack[AppendOptions]
    ) -> list[ChainEntry]:
        """Append all records in one transaction, chained; ConcurrencyError on a clash.

        With ``sign_head``, the transaction ends with a ``kei_heads`` row: the next head
        counter, the batch's sequence range and what ``sign_head`` returns for them.

        With ``guard`` = (stream, version), the transaction also checks, under the
        write lock, that ``stream`` ended at ``version`` before this batch, else
        raises ``KeysChangedError`` and appends nothing (the ledger guards its
        cached key registry with the ``kei.keys`` stream this way)."""

    def append_locked(
        self,
        streams: Sequence[str],
        build: Build,
        sign_head: HeadSigner | None = None,
    ) -> list[ChainEntry]:
        """Like ``append``, but take the write lock first, read the ends of ``streams``
        and append what ``build(ends)`` returns, all in one transaction."""

    def insert_stored(
        self,
        pages: Iterable[Sequence[tuple[Any, ...]]],
        *,
        head: ChainEntry | None,
        create: bool = False,
        heads: Iterable[HeadRow] = (),
    ) -> int:
        """Insert verified rows verbatim (same positions, bytes and chain rows) in ONE
        transaction, only if the chain still ends at ``head`` (None: the store holds no
        event); ``create`` makes missing tables in that transaction. ``heads`` are
        signed head rows inserted verbatim in the same transaction (rows of a head
        counter already stored are left as they are). Returns the rows inserted. For
        replaying bundles; see ``store/verbatim.py``."""

    def put_tree_nodes(self, rows: Sequence[tuple[int, int, bytes, int]]) -> None:
        """Create the subtree-hash table if missing and add (level, index, hash, last
        position) rows in one transaction; rows already there are left as they are."""


class LogReader(Protocol):
    """The read half of the storage seam: raw records and chain rows, unverified."""

    url: str

    def is_created(self) -> bool:
        """True when kei's tables exist."""

    def stream_version(self, stream: str) -> int:
        """The highest version in ``stream``, 0 when it is empty."""

    def stream_versions(self, streams: Sequence[str]) -> dict[str, int]:
        """The highest version of each stream in one query; empty streams are left out."""

    def read(
        self, *, after: int = 0, limit: int = PAGE, upto: int | None = None
    ) -> list[StoredRecord]:
        """Records with ``after < position (<= upto)``, in position order."""

    def read_stream(self, stream: str, upto_version: int | None = None) -> list[StoredRecord]:
        """All records of one stream in version order (up to ``upto_version``)."""

    def read_types(self, types: Sequence[str]) -> list[StoredRecord]:
        """All records of the given types, in position order."""

    def last(self, n: int) -> list[StoredRecord]:
        """The last ``n`` records, in position order."""

    def max_position(self) -> int:
        """The highest position, 0 when empty."""

    def next_position(self, after: int) -> int | None:
        """The lowest position above ``after``, None past the end."""

    def count(self) -> int:
        """The number of stored events."""

    def chain_at(self, seq: int) -> ChainEntry | None:
        """The chain entry with sequence ``seq``.

        There is no index on sequences, but positions count from 1 and a log as kei
        writes it keeps entry ``seq`` at position ``seq + 1`` (PostgreSQL's positions
        may have gaps, which only move it later): that row is probed first, by primary
        key, and the rows are scanned (for the lowest position holding ``seq``) only
        when it holds another sequence. Where several rows hold ``seq`` (a tampered
        log), the one at ``seq + 1`` wins if it is one of them."""

    def chain_size(self) -> int:
        """One more than the highest chain sequence number, 0 when empty."""

    def chain_count(self) -> int:
        """The number of chain rows."""

    def orphan_chain_entries(self) -> list[ChainEntry]:
        """Chain entries whose event row is gone."""

    def scan(self, *, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        """Raw verifier rows ``after < position <= upto``: (position, stream bytes,
        version, type bytes, state, seq, prev_hash, hash), unverified, as stored."""

    def scan_types(self, types: Sequence[str]) -> list[tuple[Any, ...]]:
        """Raw verifier rows (as ``scan``) of the given event types, in position order."""

    def has_tree_table(self) -> bool:
        """True when the table of stored Merkle subtree hashes exists."""

    def read_heads(self, *, after: int, limit: int) -> list[HeadRow]:
        """Signed head rows with counter above ``after``, in counter order, as stored;
        none when the store has no heads table."""

    def open_waiter(self) -> Waiter:
        """Something that blocks until new events may have been committed."""

    def close(self) -> None: ...


class Queries(Protocol):
    """The read models' way into the log's database."""

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the store's database, written with ``?``
        placeholders in SQL both databases speak (``kei.app.cost_reads``)."""
        ...


class EventStore(LogWriter, LogReader, Queries, Protocol):
    """The storage seam, implemented for SQLite and PostgreSQL (``store/sql.py`` holds
    what the two share): raw bytes in, raw records out."""


def iter_all(
    store: LogReader, *, after: int = 0, upto: int | None = None
) -> Iterator[StoredRecord]:
    """Stream every record in pages, keeping memory flat."""
    while True:
        page = store.read(after=after, limit=PAGE, upto=upto)
        if not page:
            return
        yield from page
        after = page[-1].position
