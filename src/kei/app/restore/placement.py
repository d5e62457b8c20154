"""How rows offered to a log meet its chain: the one check for replay and import.

``kei replay`` (a bundle) and ``kei events import`` (JSON lines) both offer a log a
run of chained rows, sequences ``first_seq`` to ``last_seq``, that it may already
hold in part. ``place`` says what they may do to the target:

- **restore**: the target holds no event; the rows must start at sequence 0;
- **extend**: the target holds the same ledger and the rows continue its chain: the
  rows up to the target's head are the target's own (same positions, same hashes),
  and only those after it are appended;
- **prefix**: the rows end at or before the target's head and their last is the
  target's entry there: nothing is appended.

Anything else is refused with a ``BundleError`` saying which: another ledger
[other-ledger], a gap (the rows start after the target's head, or after the genesis
of an empty target) [gap], or a fork (the histories differ from some sequence on)
[forked]. Given the staged rows, ``place`` checks all of it and names the first
sequence that differs; a replay places its bundle from the manifest before reading
the rows, then checks the overlap with the target's head (``check_overlap``) once
they are staged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from msgspec import Struct

from kei.adapters.store.base import EventStore
from kei.app.restore.target import Target
from kei.domain.log.verify import Link
from kei.errors import BundleError, LedgerStateError

Mode = Literal["restore", "extend", "prefix"]


class Words(Struct, frozen=True):
    """How refusals name the rows: ``starts`` ("the bundle starts"), what an empty
    store would need (``only``), and the other-ledger refusal given this store's
    ledger id."""

    starts: str
    only: str
    other_ledger: Callable[[str | None], str]


class Incoming(Struct, frozen=True):
    """The edges of the rows offered, as their source states them.

    The ledger is known by ``ledger_id`` when the source names it (a bundle's
    manifest); otherwise rows from the genesis must start with the target's genesis.
    """

    first_seq: int
    prev_hash: bytes  # of the entry the first row follows (ignored at the genesis)
    last_seq: int
    last_position: int
    head_hash: bytes  # the last row's
    words: Words
    ledger_id: str | None = None
    first_hash: bytes | None = None  # the first row's: its genesis, at sequence 0


class Placement(Struct, frozen=True):
    """What the rows may do, the entry the first row links to, and the target position
    the new rows go after."""

    mode: Mode
    link: Link | None
    split: int


def place(rows: Incoming, target: Target, staged: EventStore | None = None) -> Placement:
    """Where ``rows`` go in ``target``, or BundleError; ``staged``: the rows themselves."""
    head = target.head
    if head is None:
        if rows.first_seq != 0:
            raise BundleError(
                f"{rows.words.starts} at sequence {rows.first_seq} (exported with --after): "
                f"{rows.words.only}; this store is empty",
                kind="gap",
            )
        return Placement("restore", None, 0)
    store, size = target.store, target.size
    assert store is not None
    _same_ledger(rows, target, store)
    if rows.first_seq > size:
        raise BundleError(
            f"{rows.words.starts} at sequence {rows.first_seq} but this store's log ends at "
            f"sequence {size - 1} (position {head.position}): export with --after "
            f"{head.position} or less",
            kind="gap",
        )
    link = _link(rows, store)
    if rows.last_seq < size:
        at = store.chain_at(rows.last_seq)
        if at is None or (at.position, at.hash) != (rows.last_position, rows.head_hash):
            raise _fork(rows, store, staged, rows.last_seq)
        return Placement("prefix", link, rows.last_position)
    if staged is not None:
        check_overlap(rows, target, staged)
    return Placement("extend", link, head.position)


def check_overlap(rows: Incoming, target: Target, staged: EventStore) -> None:
    """For an extend: the staged row at the target's head is the target's head."""
    head = target.head
    if head is None or head.seq < rows.first_seq:
        return
    ours = staged.chain_at(head.seq)
    if ours is None or (ours.position, ours.hash) != (head.position, head.hash):
        assert target.store is not None
        raise _fork(rows, target.store, staged, head.seq)


def _same_ledger(rows: Incoming, target: Target, store: EventStore) -> None:
    if rows.ledger_id is not None:
        same = rows.ledger_id == target.ledger_id
    elif rows.first_seq == 0:
        genesis = store.chain_at(0)
        same = genesis is not None and genesis.hash == rows.first_hash
    else:
        return  # the link to the target's entry before the rows decides
    if not same:
        raise BundleError(rows.words.other_ledger(target.ledger_id), kind="other-ledger")


def _link(rows: Incoming, store: EventStore) -> Link | None:
    """The target's entry the first row follows (None at the genesis)."""
    if rows.first_seq == 0:
        return None
    before = store.chain_at(rows.first_seq - 1)
    if before is None:
        raise LedgerStateError(
            f"this store's log has no entry of sequence {rows.first_seq - 1}",
            hint="run `kei verify-chain`; nothing was written",
        )
    if before.hash != rows.prev_hash:
        raise fork_error(rows.first_seq - 1, before.position)
    return Link(before.position, before.seq, before.hash)


def _fork(rows: Incoming, store: EventStore, staged: EventStore | None, seq: int) -> BundleError:
    """The fork found at ``seq``, moved back to the first sequence that differs when
    the rows are staged."""
    if staged is not None:
        seq = first_difference(store, staged, rows.first_seq, seq)
    entry = store.chain_at(seq)
    return fork_error(seq, None if entry is None else entry.position)


def first_difference(local: EventStore, bundle: EventStore, lo: int, hi: int) -> int:
    """The lowest sequence in ``lo..hi`` whose entries differ (they differ at ``hi``);
    a binary search, since a hash chain agrees on everything before its first change."""
    while lo < hi:
        mid = (lo + hi) // 2
        a, b = local.chain_at(mid), bundle.chain_at(mid)
        same = a is not None and b is not None and (a.position, a.hash) == (b.position, b.hash)
        lo, hi = (mid + 1, hi) if same else (lo, mid)
    return lo


def fork_error(seq: int, position: int | None) -> BundleError:
    where = "" if position is None else f" (position {position} here)"
    return BundleError(
        f"the bundle forks from this store's log at sequence {seq}{where}: the two "
        "histories differ from there on; refused",
        kind="forked",
    )
