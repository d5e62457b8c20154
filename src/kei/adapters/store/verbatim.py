"""Inserting stored rows verbatim: the write half of replaying a bundle.

Appends (``recording.py``) compute positions and chain hashes under the store's lock;
a replay instead carries rows that another store already holds, and must land them
at the same positions with the same bytes, or their chain hashes (which cover the
position) would no longer verify. Both stores' ``insert_stored`` share these rules:

- The rows are the verifier's raw ``Row`` tuples (``kei.domain.log.verify``): position,
  stream and type as UTF-8 bytes, version, state, seq, prev_hash, hash. The caller
  has verified them; the store only refuses rows it cannot store as they are.
- Everything lands in ONE transaction, taken under the same write lock as appends,
  and only when the store's chain still ends at ``head`` (``None``: the store holds
  no event at all). Otherwise ``ConcurrencyError``, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kei.adapters.store.base import ChainEntry
from kei.domain.log.records import StoredRecord
from kei.errors import ConcurrencyError, InputError

EventRow = tuple[int, str, int, str, bytes]
ChainRow = tuple[int, int, bytes, bytes]
Splitter = Callable[[Sequence[Any]], tuple[list[EventRow], list[ChainRow]]]


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


def check_head(
    expected: ChainEntry | None, found: tuple[int, int, bytes] | None, max_position: int
) -> None:
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
