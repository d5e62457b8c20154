"""The store a bundle is replayed into, and how the bundle relates to its log.

Opening a target writes nothing: a SQLite file that does not exist is not created
here. The plan says what a replay may do:

- **restore**: the store holds no event; the bundle must start at sequence 0.
- **extend**: the store holds the same ledger and the bundle continues its chain:
  the bundle's entries up to the store's head are the store's own (same positions,
  same hashes), and only the entries after it are appended.
- **prefix**: the bundle ends at or before the store's head and its head is the
  store's entry there: nothing is appended.

Anything else is refused, saying which: another ledger, a gap (the bundle starts
after the store's head), or a fork (the histories differ from some sequence on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kei.adapters.store import EventStore, open_store
from kei.adapters.store.base import ChainEntry
from kei.app.bundle.keys import ring_of
from kei.app.bundle.layout import BundleError
from kei.app.bundle.manifest import Manifest
from kei.domain import events
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link
from kei.errors import LedgerStateError

Mode = Literal["restore", "extend", "prefix"]


@dataclass(slots=True)
class Target:
    """What replay needs to know about the store before it writes anything."""

    url: str
    store: EventStore | None = None
    new_file: Path | None = None
    created: bool = False
    ledger_id: str | None = None
    head: ChainEntry | None = None
    key_records: list[StoredRecord] = field(default_factory=list)

    @property
    def size(self) -> int:
        return 0 if self.head is None else self.head.seq + 1

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode
    link: Link | None
    split: int


def open_target(url: str, synchronous: str = "FULL") -> Target:
    """Look at the store at ``url`` (creating nothing)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            return Target(url, new_file=path)
    store = open_store(url, synchronous=synchronous)
    target = Target(url, store=store)
    try:
        target.created = store.is_created()
        if target.created and store.count() > 0:
            _read_log(target, store)
    except BaseException:
        store.close()
        raise
    return target


def _read_log(target: Target, store: EventStore) -> None:
    last = store.last(1)[0]
    if last.seq is None or last.prev_hash is None or last.hash is None:
        raise LedgerStateError(
            f"the last event of {store.url} (position {last.position}) has no chain entry",
            hint="run `kei verify-chain`; nothing was written",
        )
    target.head = ChainEntry(last.position, last.seq, last.prev_hash, last.hash)
    target.key_records = list(store.read_stream(events.SYSTEM_STREAM))
    target.ledger_id = ring_of(target.key_records, last.position).ledger_id
    if target.ledger_id is None:
        raise LedgerStateError(
            f"{store.url} holds events but no valid genesis: replay cannot extend it",
            hint="run `kei verify-chain`; nothing was written",
        )


def plan(m: Manifest, target: Target) -> Plan:
    """What replaying the bundle of manifest ``m`` into ``target`` may do, or BundleError."""
    if target.head is None:
        if m.first_seq != 0:
            raise BundleError(
                f"the bundle starts at sequence {m.first_seq} (exported with --since): it can "
                f"only extend a store holding ledger {m.ledger_id}; this store is empty",
                kind="gap",
            )
        return Plan("restore", None, 0)
    if target.ledger_id != m.ledger_id:
        raise BundleError(
            f"the bundle is of ledger {m.ledger_id} ({m.ledger_name}), this store holds "
            f"ledger {target.ledger_id}: refused",
            kind="other-ledger",
        )
    store, size = target.store, target.size
    assert store is not None
    if m.first_seq > size:
        raise BundleError(
            f"the bundle starts at sequence {m.first_seq} but this store's log ends at "
            f"sequence {size - 1} (position {target.head.position}): export with "
            f"--since {target.head.position} or less",
            kind="gap",
        )
    link = None
    if m.first_seq > 0:
        before = store.chain_at(m.first_seq - 1)
        if before is None:
            raise LedgerStateError(
                f"this store's log has no entry of sequence {m.first_seq - 1}",
                hint="run `kei verify-chain`; nothing was written",
            )
        if "sha256:" + before.hash.hex() != m.prev_hash:
            raise fork_error(m.first_seq - 1, before.position)
        link = Link(before.position, before.seq, before.hash)
    if m.last_seq < size:
        at = store.chain_at(m.last_seq)
        if at is None or "sha256:" + at.hash.hex() != m.head_hash or at.position != m.last_position:
            raise fork_error(m.last_seq, None if at is None else at.position)
        return Plan("prefix", link, m.last_position)
    return Plan("extend", link, target.head.position)


def check_overlap(m: Manifest, target: Target, staged: EventStore) -> None:
    """For an extend: the bundle's entry at the store's head is the store's head."""
    head = target.head
    if head is None or head.seq < m.first_seq:
        return
    ours = staged.chain_at(head.seq)
    if ours is None or (ours.position, ours.hash) != (head.position, head.hash):
        assert target.store is not None
        seq = first_difference(target.store, staged, m.first_seq, head.seq)
        entry = target.store.chain_at(seq)
        raise fork_error(seq, None if entry is None else entry.position)


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
