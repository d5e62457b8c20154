"""``kei events import --format jsonl``: events written by ``kei events export`` taken
back byte for byte, with the checks replay makes, all or nothing.

Steps (the parts replay uses too, ``kei.app.restore``, and its event checks):

1. read every line into a scratch store beside the target (memory stays flat);
2. place the lines against the target's log (``restore/placement.py``): into an empty
   store they must start at the genesis (restore); into a store of the same ledger
   they must continue its chain or overlap it exactly (extend), or lie inside it
   (prefix: nothing to do); anything else is a fork, a gap or another ledger, and
   refused;
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
from contextlib import closing
from typing import Any

from msgspec import Struct

from kei.adapters.store.base import EventStore
from kei.adapters.workers.verify_pool import SCAN_PAGE, RangeTask
from kei.app.bundle.checks import RANGE, check_events
from kei.app.bundle.keys import ring_of
from kei.app.jsonl.export import read_jsonl
from kei.app.ledger.heads_io import check_staged_heads
from kei.app.restore.placement import Incoming, Words, place
from kei.app.restore.staging import Staging
from kei.app.restore.target import Target, open_target, stage_folder
from kei.domain import events
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link
from kei.errors import BundleError, InputError
from kei.limits import LIMITS


class JsonlImport(Struct):
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
        with closing(Staging(None if dry_run else stage_folder(target))) as staging:
            heads: list[HeadRow] = []
            count = staging.load(_pages(read_jsonl(lines, heads)))
            if count == 0:
                raise InputError("no events to import", hint="give a non-empty JSON lines file")
            placed = place(_incoming(staging.store), target, staging.store)
            _verify(target, staging, placed.link, heads)
            last = staging.store.last(1)[0]
            assert last.seq is not None
            new = max(0, last.seq + 1 - target.size)
            if new and not dry_run:
                _commit(target, staging, placed.split, heads)
            head = last.position
    finally:
        target.close()
    if new and not dry_run:
        _catch_up(url, seal_key)
    return JsonlImport(count, placed.mode, new, head, dry_run)


def _pages(records: Iterable[StoredRecord]) -> Iterator[list[tuple[Any, ...]]]:
    """The records as verifier rows, staged a verifier's page at a time."""
    page: list[tuple[Any, ...]] = []
    for r in records:
        if r.seq is None or r.prev_hash is None or r.hash is None:
            raise InputError(f"the event at position {r.position} has no chain entry")
        page.append((r.position, r.stream.encode(), r.version, r.type.encode(), r.state,
                     r.seq, r.prev_hash, r.hash))  # fmt: skip
        if len(page) == SCAN_PAGE:
            yield page
            page = []
    if page:
        yield page


_WORDS = Words(
    "the lines start",
    "they can only extend the ledger they came from",
    lambda ours: (
        "the lines are of another ledger (their genesis differs from this store's): refused"
    ),
)


def _incoming(staged: EventStore) -> Incoming:
    """The staged lines' edges, for ``placement.place``."""
    first, last = staged.read(after=0, limit=1)[0], staged.last(1)[0]
    assert first.seq is not None and first.prev_hash is not None and first.hash is not None
    assert last.seq is not None and last.hash is not None
    return Incoming(
        first.seq, first.prev_hash, last.seq, last.position, last.hash, _WORDS,
        first_hash=first.hash,
    )  # fmt: skip


def _verify(target: Target, staging: Staging, link: Link | None, heads: list[HeadRow]) -> None:
    staged = staging.store
    first = staged.read(after=0, limit=1)[0].position
    keys = target.keys_before(first)
    keys += staged.read_stream(events.SYSTEM_STREAM)
    ring = ring_of(keys, staged.max_position())
    task = RangeTask(staging.url, "OFF", keys, False, SCAN_PAGE, RANGE, LIMITS.max_bundle_findings)
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
