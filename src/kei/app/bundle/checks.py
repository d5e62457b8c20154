"""Replay's verification of the staged bundle, before anything reaches the target.

Numbered as in ``docs/events.md`` ("Bundles", replay steps 4-8):

4. the key ring is folded from the verified key events: the target's before the
   bundle, then the bundle's own; its genesis names the manifest's ledger;
5. every event was checked as ``verify-chain`` checks it (link, hash, signature, key
   validity), starting from the entry the bundle follows, while the bundle was read
   (``pipeline.py``): no finding, and as many events as the manifest says;
6. the manifest's exporter key is a key of this ledger, active at the bundle's head;
7. the checkpoint is the manifest's, covers exactly the bundle's head, names this
   ledger and is signed by one of its keys;
7b. for a ledger whose genesis declares signed heads, ``proof/heads`` covers every
   row from the bundle's first, tiles, and signs the staged chain (``heads_io.py``);
8. ``proof/keys.json`` says what the key events say.

Any failure is a ``BundleError``; the staging store is thrown away by the caller.
``check_events`` is step 5 over rows already staged, for imports that stage first
(``kei events import``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kei.adapters.store.base import EventStore
from kei.adapters.workers.verify_pool import (
    LOWEST,
    Ranged,
    RangeTask,
    check_in_processes,
    check_range_rows,
)
from kei.app.bundle.content import BundleContent
from kei.app.bundle.keys import keys_document, ring_of
from kei.app.bundle.layout import CHECKPOINT, HEADS, KEYS
from kei.app.bundle.pipeline import PassResult
from kei.app.ledger.heads_io import check_staged_heads, decode_heads
from kei.app.restore.target import Target
from kei.domain.log.checkpoint import check_checkpoint, parse_checkpoint
from kei.domain.log.findings import Finding
from kei.domain.log.heads import HeadRow
from kei.domain.log.keyring import KeyRing, KeyStatus
from kei.domain.log.verify import (
    Link,
    RangeChecker,
    RangeResult,
    check_row_link,
)
from kei.errors import BundleError, CheckpointFormatError
from kei.limits import LIMITS

RANGE = 10_000
PARALLEL_MIN = 20_000


def verify_bundle(
    staged: EventStore, content: BundleContent, target: Target, checked: PassResult
) -> KeyRing:
    """Steps 4-8, once the pass (``pipeline.py``) has read and checked every row;
    returns the ledger's key ring at the head."""
    m = content.manifest
    key_records = target.keys_before(m.first_position)
    key_records += content.key_records
    ring = ring_of(key_records, m.last_position)  # step 4
    if ring.ledger_id != m.ledger_id:
        raise BundleError(
            f"the key events name ledger {ring.ledger_id}, the manifest {m.ledger_id}",
            kind="ledger",
        )
    if checked.findings:  # step 5
        first = checked.findings[0]
        total = len(checked.findings) + checked.omitted
        raise BundleError(
            f"the bundle's events do not verify: {total} finding(s), the first at "
            f"position {first.position}: {first.kind.value}: {first.detail}",
            kind="events",
        )
    if checked.checked != m.events:
        raise BundleError(
            f"checked {checked.checked} events, the manifest says {m.events}", kind="events"
        )
    _check_exporter(ring, m.exporter_key_id, m.last_position)  # step 6
    _check_checkpoint(staged, target, content, ring)  # step 7
    content.heads = _check_heads(staged, content, ring)  # step 7b
    if content.proofs.get(KEYS) != keys_document(ring):  # step 8
        raise BundleError(f"{KEYS} does not match the ledger's key events", kind="keys")
    return ring


def check_events(
    staged: EventStore,
    ring: KeyRing,
    task: RangeTask,
    link: Link | None,
    jobs: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, list[Finding]]:
    """Step 5 over every row of ``staged`` (which may start anywhere in the chain):
    (rows checked, findings), linking the first row to ``link`` (None: it must be
    the genesis). Any verbatim import can stage its rows and call this."""
    top = staged.max_position()

    def serial(lo: int, hi: int, ref: Link | None, tick: bool) -> RangeResult:
        checker = RangeChecker(ring, prev=ref, max_findings=LIMITS.max_bundle_findings)
        for n in check_range_rows(staged, checker, (lo, hi)):
            if tick and progress:
                progress(n)
        return checker.result

    if jobs <= 1 or staged.count() < PARALLEL_MIN:
        result = serial(LOWEST, top, link, True)
        return result.count, result.findings
    ranges: Iterator[Ranged] = check_in_processes(task, top, jobs, progress)
    ref, count, findings = link, 0, list[Finding]()
    for lo, hi, result in ranges:
        if result.first is not None and check_row_link(ref, *result.first):
            result = serial(lo, hi, ref, False)
        count += result.count
        findings += result.findings
        ref = result.last or ref
    return count, findings


def _check_heads(staged: EventStore, content: BundleContent, ring: KeyRing) -> list[HeadRow]:
    """Step 7b: the signed heads of the bundle's range hold over its rows (a ledger whose
    genesis declares no heads has none; bundles written before heads carry none)."""
    raw = content.proofs.get(HEADS)
    if raw is None and not ring.signed_heads:
        return []
    try:
        heads = decode_heads(raw or b"")
    except ValueError as exc:
        raise BundleError(f"{HEADS} is malformed: {exc}", kind="heads") from exc
    found = check_staged_heads(staged, ring, heads)
    if found:
        raise BundleError(
            f"the bundle's signed heads do not hold: {len(found)} finding(s), the first: "
            f"{found[0]}",
            kind="heads",
        )
    return heads


def _check_exporter(ring: KeyRing, key_id: str, head: int) -> None:
    status = ring.status_at(bytes.fromhex(key_id), head)
    if status is KeyStatus.ACTIVE:
        return
    why = {
        KeyStatus.UNKNOWN: "which this ledger does not know",
        KeyStatus.NOT_YET: "which this ledger had not added at the bundle's head",
        KeyStatus.REVOKED: "which this ledger revoked before the bundle's head",
    }[status]
    raise BundleError(f"the manifest is signed by key {key_id}, {why}", kind="unknown-key")


def _check_checkpoint(
    staged: EventStore, target: Target, content: BundleContent, ring: KeyRing
) -> None:
    m = content.manifest
    try:
        text = content.proofs[CHECKPOINT].decode("utf-8")
        cp = parse_checkpoint(text)
    except (KeyError, UnicodeDecodeError, CheckpointFormatError) as exc:
        raise BundleError(f"{CHECKPOINT} is not a checkpoint ({exc})", kind="checkpoint") from exc
    if text != m.checkpoint:
        raise BundleError(f"{CHECKPOINT} differs from the manifest's", kind="checkpoint")
    if cp.size != m.last_seq + 1:
        raise BundleError(
            f"the checkpoint covers {cp.size} entries, the bundle's head is entry {m.last_seq}",
            kind="checkpoint",
        )

    def entry_at(seq: int) -> tuple[int, bytes] | None:
        entry = staged.chain_at(seq) if seq >= m.first_seq else None
        if entry is None and target.store is not None:
            entry = target.store.chain_at(seq)
        return None if entry is None else (entry.position, entry.hash)

    found = check_checkpoint(
        cp,
        ledger_id=ring.ledger_id,
        public_keys=[k.public_key for k in ring.keys.values()],
        chain_size=m.last_seq + 1,
        entry_at=entry_at,
    )
    if found:
        raise BundleError(f"the checkpoint does not hold: {found[0].detail}", kind="checkpoint")
