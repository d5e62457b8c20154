"""Inserting stored rows verbatim: the write half of replaying a bundle.

Appends (``SqlStore.append``) compute positions and chain hashes under the store's lock;
a replay instead carries rows that another store already holds, and must land them
at the same positions with the same bytes, or their chain hashes (which cover the
position) would no longer verify. Both stores' ``insert_stored`` share these rules:

- The rows are the verifier's raw ``Row`` tuples (``kei.domain.log.verify``): position,
  stream and type as UTF-8 bytes, version, state, seq, prev_hash, hash. The caller
  has verified them; the store only refuses rows it cannot store as they are.
- Everything lands in ONE transaction, taken under the same write lock as appends,
  and only when the store's chain still ends at ``head`` (``None``: the store holds
  no event at all). Otherwise ``ConcurrencyError``, and nothing is written.
- Signed head rows land verbatim in the same transaction, before the events. A head
  whose counter the store holds already must be that very row (a copy that overlaps
  the store's own log carries the heads the store has): one that differs in any
  column is refused (``check_heads``: ``VerificationError``, nothing written), an
  identical one is left as it is.

``insert_verbatim`` is that transaction, for both stores; a store's recorder does
only what its database does differently (``Copier``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kei.adapters.store.base import ChainEntry
from kei.adapters.store.dialect import Statements
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.errors import ConcurrencyError, InputError, VerificationError

EventRow = tuple[int, str, int, str, bytes]
ChainRow = tuple[int, int, bytes, bytes]
Splitter = Callable[[Sequence[Any]], tuple[list[EventRow], list[ChainRow]]]
Found = tuple[int, int, bytes] | None


class Copier(Protocol):
    """What ``insert_verbatim`` asks of a store's recorder, inside its transaction."""

    datastore: Any
    sql: Statements

    def begin_copy(self, c: Any, create: bool) -> tuple[Found, int]:
        """Make missing tables (with ``create``) and take the write lock; return the
        stored chain head as (position, seq, hash), None when there is none, and the
        highest event position, 0 when there is none."""

    def copy_page(self, c: Any, events: list[EventRow], chain: list[ChainRow]) -> None:
        """Insert one page's event and chain rows as they are."""

    def end_copy(self, c: Any, last: int) -> None:
        """Rows were inserted, up to position ``last``."""

    def create_table(self) -> None:
        """Create kei's tables as ``EventStore.create`` does (after the commit)."""


def insert_verbatim(
    recorder: Copier,
    pages: Iterable[Sequence[Any]],
    head: ChainEntry | None,
    *,
    create: bool,
    split: Splitter,
    heads: Iterable[HeadRow],
) -> int:
    """Insert verifier rows verbatim, in one transaction, by the rules above; the
    rows inserted. ``split`` turns a page into event and chain rows (``split_records``
    for pages of records whose text is decoded already)."""
    with recorder.datastore.transaction(commit=True) as c:
        found, top = recorder.begin_copy(c, create)
        check_head(head, found, top)
        copy_heads(c, heads, recorder.sql)  # first: a head that differs refuses at once
        inserted, last = 0, 0
        for page in pages:
            events, chain = split(page)
            if events:
                recorder.copy_page(c, events, chain)
                inserted, last = inserted + len(events), events[-1][0]
        if inserted:
            recorder.end_copy(c, last)
    if create:
        recorder.create_table()
    return inserted


def copy_heads(c: Any, heads: Iterable[HeadRow], sql: Statements) -> None:
    """Insert signed head rows verbatim, creating the table if an older store lacks
    it; a counter already stored must hold the same row (``check_heads``), which it
    keeps."""
    rows = [tuple(h) for h in heads]
    if rows:
        c.execute(sql.create_heads)
        counters = [r[0] for r in rows]
        c.execute(sql.stored_heads, (min(counters), max(counters)))
        check_heads(iter(c.fetchone, None), rows)
        c.executemany(sql.copy_head, rows)


def check_heads(stored: Iterable[Any], incoming: Sequence[HeadRow]) -> None:
    """Refuse ``incoming`` head rows when the store holds a head of the same counter
    that differs from it in any column; ``stored`` are the store's head rows (those of
    the incoming counters, at least). Identical rows pass: they are the same head."""
    theirs = {row[0]: _as_stored(row) for row in incoming}
    for row in stored:
        mine = _as_stored(row)
        other = theirs.get(mine[0])
        if other is not None and other != mine:
            error = VerificationError(
                f"signed head {mine[0]} of the rows to insert differs from head {mine[0]} "
                "in this store: they are not the same log's; refused",
                kind="head-conflict",
            )
            error.hint = "nothing was written; run `kei verify-chain` on both copies"
            raise error


def _as_stored(row: Any) -> tuple[Any, ...]:
    """A head row as a tuple (a driver's row may be a mapping), its binary columns as
    bytes (drivers hand out memoryview too)."""
    values = row.values() if isinstance(row, Mapping) else row
    return tuple(bytes(v) if isinstance(v, memoryview | bytearray) else v for v in values)


def split_rows(rows: Sequence[tuple[Any, ...]]) -> tuple[list[EventRow], list[ChainRow]]:
    """The event rows and chain rows of a page of verifier rows, as the stores write them."""
    try:
        events = [(r[0], r[1].decode(), r[2], r[3].decode(), bytes(r[4])) for r in rows]
    except UnicodeDecodeError as exc:
        raise InputError(f"a stream or type in the page is not UTF-8 text ({exc})") from exc
    except AttributeError:  # text or memoryview columns: the slow path
        events = [(r[0], _text(r[1]), r[2], _text(r[3]), bytes(r[4])) for r in rows]
    chain = [(r[0], r[5], bytes(r[6]), bytes(r[7])) for r in rows]
    return events, chain


def split_records(records: Sequence[StoredRecord]) -> tuple[list[EventRow], list[ChainRow]]:
    """``split_rows`` for records, whose stream and type are text already (replay has
    decoded them for its fold, and staging them should not decode them again)."""
    events = [(r.position, r.stream, r.version, r.type, r.state) for r in records]
    chain = [(r.position, r.seq, r.prev_hash, r.hash) for r in records]
    return events, chain  # type: ignore[return-value]  # a staged record is chained


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else bytes(value).decode("utf-8")


def check_head(expected: ChainEntry | None, found: Found, max_position: int) -> None:
    """Refuse unless the store's chain ends at ``expected`` with no event after it.

    ``found`` is the stored head as (position, seq, hash); ``max_position`` the highest
    event position (0 when there is none).
    """
    if expected is None:
        if found is None and max_position == 0:
            return
        raise ConcurrencyError(
            "the store is no longer empty: another writer appended while the bundle "
            "was checked; nothing was written",
            hint="run the replay again",
        )
    same = found is not None and (found[0], found[1], bytes(found[2])) == (
        expected.position,
        expected.seq,
        expected.hash,
    )
    if not same or max_position != expected.position:
        raise ConcurrencyError(
            f"the store's log no longer ends at position {expected.position}: another "
            "writer appended while the bundle was checked; nothing was written",
            hint="run the replay again",
        )
