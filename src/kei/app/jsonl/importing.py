"""``kei events import --format jsonl``: events written by ``kei events export`` taken
back byte for byte, with the checks replay makes, all or nothing.

Steps (the bundle replayer's parts, ``kei.app.bundle``):

1. read every line into a scratch store beside the target (memory stays flat);
2. place the lines against the target's log: into an empty store they must start at
   the genesis (restore); into a store of the same ledger they must continue its
   chain or overlap it exactly (extend), or lie inside it (prefix: nothing to do);
   anything else is a fork, a gap or another ledger, and refused;
3. verify every line as ``verify-chain`` does (link, hash, signature, key validity),
   linked to the target's entry the first line follows, and the signed heads the
   lines carry over them (a ledger whose genesis declares heads needs them);
4. insert the new rows and heads verbatim in ONE transaction that checks the target
   has not moved (or move the scratch database into place for a new SQLite file);
5. catch the target's read models up.

Until step 4 commits the target is untouched, whatever fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kei.adapters.store.base import EventStore
from kei.adapters.workers.verify_pool import RangeTask
from kei.app.bundle.checks import PAGE, RANGE, check_events
from kei.app.bundle.keys import ring_of
from kei.app.bundle.layout import BundleError
from kei.app.bundle.replay import stage_folder
from kei.app.bundle.staging import Staging
from kei.app.bundle.target import Target, first_difference, fork_error, open_target
from kei.app.jsonl.export import read_jsonl
from kei.app.ledger.heads_io import check_staged_heads
from kei.domain import events
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link
from kei.errors import InputError
from kei.limits import LIMITS


@dataclass(slots=True)
class JsonlImport:
    """What an import did (or, dry, would do): events read, mode, events new to the store."""

    lines: int
    mode: str
    new: int
    head_position: int
    dry_run: bool


def import_jsonl(
    lines: Iterable[bytes],
    url: str,
    *,
    dry_run: bool = False,
    synchronous: str = "FULL",
    seal_key: bytes | None = None,
) -> JsonlImport:
    """Verify the events in ``lines`` and add the new ones to the store at ``url``;
    ``seal_key``: the read models caught up afterwards end sealed."""
    target = open_target(url, synchronous)
    try:
        with Staging(None if dry_run else stage_folder(target)) as staging:
            heads: list[HeadRow] = []
            count = staging.load(_pages(read_jsonl(lines, heads)))
            if count == 0:
                raise InputError("no events to import", hint="give a non-empty JSON lines file")
            mode, link, split = _place(target, staging.store)
            _verify(target, staging, link, heads)
            last = staging.store.last(1)[0]
            assert last.seq is not None
            new = max(0, last.seq + 1 - target.size)
            if new and not dry_run:
                _commit(target, staging, split, heads)
            head = last.position
    finally:
        target.close()
    if new and not dry_run:
        _catch_up(url, seal_key)
    return JsonlImport(count, mode, new, head, dry_run)


def _pages(records: Iterable[StoredRecord]) -> Iterator[list[tuple[Any, ...]]]:
    page: list[tuple[Any, ...]] = []
    for r in records:
        if r.seq is None or r.prev_hash is None or r.hash is None:
            raise InputError(f"the event at position {r.position} has no chain entry")
        page.append((r.position, r.stream.encode(), r.version, r.type.encode(), r.state,
                     r.seq, r.prev_hash, r.hash))  # fmt: skip
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _place(target: Target, staged: EventStore) -> tuple[str, Link | None, int]:
    """(mode, the link the first line follows, the target position new rows go after)."""
    first, last = staged.read(after=0, limit=1)[0], staged.last(1)[0]
    assert first.seq is not None and last.seq is not None
    if target.head is None:
        if first.seq != 0:
            raise BundleError(
                f"the lines start at sequence {first.seq} (exported with --since): they can "
                "only extend the ledger they came from; this store is empty",
                kind="gap",
            )
        return "restore", None, 0
    store, size = target.store, target.size
    assert store is not None
    if first.seq > size:
        raise BundleError(
            f"the lines start at sequence {first.seq} but this store's log ends at sequence "
            f"{size - 1} (position {target.head.position}): export with --since "
            f"{target.head.position} or less",
            kind="gap",
        )
    _same_ledger(store, staged, first.seq)
    link = None
    if first.seq > 0:
        before = store.chain_at(first.seq - 1)
        if before is None or before.hash != first.prev_hash:
            raise fork_error(first.seq - 1, None if before is None else before.position)
        link = Link(before.position, before.seq, before.hash)
    overlap_end = min(last.seq, size - 1)
    if overlap_end >= first.seq:
        ours, theirs = store.chain_at(overlap_end), staged.chain_at(overlap_end)
        if (
            ours is None
            or theirs is None
            or (ours.position, ours.hash)
            != (
                theirs.position,
                theirs.hash,
            )
        ):
            seq = first_difference(store, staged, first.seq, overlap_end)
            entry = store.chain_at(seq)
            raise fork_error(seq, None if entry is None else entry.position)
    if last.seq < size:
        return "prefix", link, target.head.position
    return "extend", link, target.head.position


def _same_ledger(store: EventStore, staged: EventStore, first_seq: int) -> None:
    if first_seq != 0:
        return  # the link to the target's entry before the lines decides
    ours, theirs = store.chain_at(0), staged.chain_at(0)
    if ours is None or theirs is None or ours.hash != theirs.hash:
        raise BundleError(
            "the lines are of another ledger (their genesis differs from this store's): refused",
            kind="other-ledger",
        )


def _verify(target: Target, staging: Staging, link: Link | None, heads: list[HeadRow]) -> None:
    staged = staging.store
    first = staged.read(after=0, limit=1)[0].position
    keys = [r for r in target.key_records if r.position < first]
    keys += staged.read_stream(events.SYSTEM_STREAM)
    ring = ring_of(keys, staged.max_position())
    task = RangeTask(staging.url, "OFF", keys, False, PAGE, RANGE, LIMITS.max_bundle_findings)
    _, findings = check_events(staged, ring, task, link, 1, None)
    if findings:
        f = findings[0]
        raise BundleError(
            f"the events do not verify: {len(findings)} finding(s), the first at position "
            f"{f.position}: {f.kind.value}: {f.detail}",
            kind="events",
        )
    found = check_staged_heads(staged, ring, heads)
    if found:
        raise BundleError(
            f"the signed heads do not hold: {len(found)} finding(s), the first: {found[0]}",
            kind="heads",
        )


def _commit(target: Target, staging: Staging, split: int, heads: list[HeadRow]) -> int:
    if target.new_file is not None:
        count = staging.store.count()
        staging.put_heads(heads)
        staging.move_to(target.new_file)
        return count
    assert target.store is not None
    return target.store.insert_stored(
        staging.rows_after(split), head=target.head, create=not target.created, heads=heads
    )


def _catch_up(url: str, seal_key: bytes | None) -> None:
    from kei.adapters.readmodels.engine import default_engine

    with default_engine(url, seal_key) as engine:
        engine.catch_up()
