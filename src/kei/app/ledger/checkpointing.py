"""``Ledger.checkpoint``: check, then sign a C2SP checkpoint of the whole log.

The first time (or without a state folder) the whole log is checked as
``verify-chain --quick`` does, and the tree root recomputed from every chain row.
After that, the state of the last checkpoint signed here (``adapters/files/checkpoint_state.py``)
lets the next one check only what was appended since:

1. the state must be this ledger's and whole: its checkpoint signed by a key of the
   ledger, for this ledger id, and its compact range must give that checkpoint's root;
2. the store's chain entry at the anchor's position (the state's last entry) must
   still have the anchor's sequence and hash; else the whole log is checked *against
   the state's checkpoint*, so a rewritten, cut or forked history is refused;
3. the rows after the anchor are checked (links from the anchor, recomputed hashes,
   every chain row with its event, stream versions continuing their streams:
   ``app/ledger/new_versions.py``), the key events and the genesis as always, and
   their hashes extend the compact range: the new root.

Why that is sound, and what it does not re-check, is in docs/architecture.md
("Incremental checkpoints").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

from msgspec import Struct

from kei.adapters.files.checkpoint_state import CheckpointState, load_state, save_state, state_path
from kei.adapters.store import EventStore
from kei.adapters.store.base import CHAIN_TABLE, HEADS_TABLE
from kei.app.ledger.new_versions import NewVersions
from kei.app.ledger.tree_pass import HeadLoader, as_hash, compare_stored
from kei.app.ledger.verification import key_findings
from kei.app.ledger.verify_report import VerifyLimits, VerifyReport
from kei.domain.log.checkpoint import Checkpoint, parse_checkpoint, sign_tree_checkpoint, signed_by
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.heads import HeadChecker
from kei.domain.log.identity import genesis_line
from kei.domain.log.keyring import KeyRing
from kei.domain.log.keys import SigningKey
from kei.domain.log.merkle import CompactRange
from kei.domain.log.verify import (
    Link,
    RangeChecker,
)
from kei.errors import CheckpointFormatError, LedgerStateError, VerificationError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger

log = logging.getLogger(__name__)

_PRIOR_KINDS: Final = {FindingKind.FORKED, FindingKind.TRUNCATED, FindingKind.BAD_CHECKPOINT}


class _Tree(Struct, frozen=True):
    """A checked tree: its size and root, and what the next checkpoint resumes from."""

    size: int
    root: bytes
    hashes: tuple[bytes, ...]
    anchor: Link | None  # the chain entry at sequence size - 1 (None: not known)


class _Prior(Struct, frozen=True):
    """A usable state: the checkpoint signed last and its tree."""

    state: CheckpointState
    checkpoint: Checkpoint
    tree: _Tree


def sign_now(ledger: Ledger, key: SigningKey, state_dir: Path | None) -> str:
    """Check the log (incrementally when ``state_dir`` holds a usable state) and sign.
    The state is kept per store, under the ledger's URL as given."""
    url = ledger.url.text
    ring = ledger.keyring(refresh=True)  # once: a key revoked elsewhere signs nothing
    ledger.check_signer(key)
    prior = None if state_dir is None else _usable(load_state(state_dir, url), ring)
    tree = None if prior is None else _extend(ledger.store, ring, prior)
    if tree is None:
        tree = _whole(ledger, prior, None if state_dir is None else state_path(state_dir, url))
    if ring.ledger_id is None:  # a valid genesis was checked above; this is for mypy
        raise LedgerStateError("the log has no valid genesis", hint="run `kei verify-chain`")
    genesis = ledger.genesis_key(refresh=False)
    extra = () if genesis is None else (genesis_line(genesis),)
    text = sign_tree_checkpoint(ring.ledger_id, tree.size, tree.root, key, extra)
    if state_dir is not None and tree.anchor is not None:
        _remember(state_dir, url, ring.ledger_id, text, tree)
    return text


def _usable(state: CheckpointState | None, ring: KeyRing) -> _Prior | None:
    """The state when it is this ledger's and whole (step 1), else None."""
    if state is None or state.ledger_id != ring.ledger_id:
        if state is not None:
            log.info("checkpoint state is another ledger's; checking the whole log")
        return None
    try:
        cp = parse_checkpoint(state.checkpoint)
        tree = CompactRange.resume(cp.size, state.range_hashes)
    except (CheckpointFormatError, ValueError):
        cp, tree = None, None
    keys = [k.public_key for k in ring.keys.values()]
    if (
        cp is None
        or tree is None
        or cp.origin != ring.ledger_id
        or not cp.is_tree
        or cp.size != state.anchor_seq + 1
        or tree.root() != cp.root_hash
        or signed_by(cp, keys) is None
    ):
        log.warning("checkpoint state does not hold together; checking the whole log")
        return None
    anchor = Link(state.anchor_position, state.anchor_seq, state.anchor_hash)
    return _Prior(state, cp, _Tree(cp.size, cp.root_hash, tree.hashes, anchor))


def _extend(store: EventStore, ring: KeyRing, prior: _Prior) -> _Tree | None:
    """Steps 2-3: the tree extended by the rows after the anchor; None when the anchor
    moved or chain rows lack their events (the whole log is checked then)."""
    anchor = prior.tree.anchor
    assert anchor is not None and anchor.seq is not None
    at = store.select(f"SELECT seq, hash FROM {CHAIN_TABLE} WHERE position = ?", (anchor.position,))
    if not at or at[0][0] != anchor.seq or as_hash(at[0][1]) != anchor.hash:
        log.warning("the chain entry the last checkpoint ended at changed; checking the whole log")
        return None
    report = VerifyReport(store.url, ring.ledger_id, quick=True)
    top = store.max_position()
    tree, last = _check_after(store, ring, prior.tree, anchor, top, report)
    report.add(key_findings(store, ring))
    if not report.ok:
        raise _refused(report, None)
    rows = store.select(
        f"SELECT COUNT(*) FROM {CHAIN_TABLE} WHERE position > ? AND position <= ?",
        (anchor.position, top),
    )
    if int(rows[0][0]) != tree.size - prior.tree.size:
        log.warning("chain rows without their event after the last checkpoint; checking all")
        return None
    log.info("checkpoint: checked %d entries after size %d", tree.size - prior.tree.size,
             prior.tree.size)  # fmt: skip
    return _Tree(tree.size, tree.root(), tree.hashes, last)


def _check_after(
    store: EventStore, ring: KeyRing, start: _Tree, anchor: Link, top: int, report: VerifyReport
) -> tuple[CompactRange, Link]:
    """Check rows ``anchor.position < position <= top`` (links from the anchor and
    recomputed hashes) and extend the tree with their hashes, page by page."""
    met: list[tuple[int, int, bytes]] = []
    stored = store.has_tree_table()
    tree = CompactRange.resume(start.size, start.hashes, (lambda *n: met.append(n)) if stored else None)  # fmt: skip
    checker = RangeChecker(ring, quick=True, prev=anchor, max_findings=report.max_findings)
    heads = _heads_after(store, ring, anchor, report)
    versions = NewVersions()
    page = VerifyLimits().page
    after, last = anchor.position, anchor
    while after < top:
        window = min(top, after + page)
        rows = store.scan(after=after, upto=window, limit=page)
        if not rows:
            nxt = store.next_position(window)
            if nxt is None or nxt > top:
                break
            after = nxt - 1
            continue
        checker.feed(rows)
        versions.feed(rows)
        chained = [(int(r[0]), as_hash(r[7]), r[5]) for r in rows if r[5] is not None]
        if heads is not None and chained:
            heads.feed(chained)
        first = tree.size
        tree.extend(h for _, h, _ in chained)
        if met:
            compare_stored(store, report, met, [p for p, _, _ in chained], first)
            met.clear()
        if chained:
            pos, digest, seq = chained[-1]
            last = Link(pos, seq, digest)
        after = window
    report.add(checker.result.findings, checker.result.omitted)
    if heads is not None:
        report.add(heads.finish())
    report.add(versions.check_before(store, anchor.position))
    return tree, last


def _heads_after(
    store: EventStore, ring: KeyRing, anchor: Link, report: VerifyReport
) -> HeadLoader | None:
    """The signed heads of what was appended since the anchor, checked as the whole-log
    path checks them under ``--quick`` (they tile from the anchor on, cover every new
    entry, none signs past the end); None for a ledger whose genesis declares none.

    A checkpoint ends where a transaction ended, so a head ends at the anchor and the
    next starts after it; they are found by their counter (a binary search over the
    heads table's key, a few index probes), never by a scan."""
    if not ring.signed_heads or ring.ledger_id is None or anchor.seq is None:
        return None
    first = _first_head_after(store, anchor.seq)
    before = (
        store.select(f"SELECT seq FROM {HEADS_TABLE} WHERE position = ?", (first - 1,))
        if first
        else []
    )
    if not before or before[0][0] != anchor.seq:
        detail = f"no head {first - 1} signs the last checkpoint's end (sequence {anchor.seq})"
        report.add([Finding(FindingKind.HEAD_MISSING, None, detail)])
    checker = HeadChecker.starting_at(ring, ring.ledger_id, first, anchor.seq + 1)
    checker.quick, checker.max_findings = True, report.max_findings
    loader = HeadLoader(store, checker, VerifyLimits().page)
    loader.start_after(first - 1)
    return loader


def _first_head_after(store: EventStore, seq: int) -> int:
    """The counter of the first head signing past ``seq`` (one past the last head when
    none does): heads' sequences grow with their counter in a log that verifies, and
    in one that does not the checker's tiling rule names what is wrong."""
    if not store.read_heads(after=-1, limit=1):  # none, or no table: nothing signs past
        return 0
    top = store.select(f"SELECT MAX(position) FROM {HEADS_TABLE}")
    lo, hi = 0, (int(top[0][0]) + 1) if top and top[0][0] is not None else 0
    while lo < hi:
        mid = (lo + hi) // 2
        row = store.select(f"SELECT seq FROM {HEADS_TABLE} WHERE position = ?", (mid,))
        if row and type(row[0][0]) is int and row[0][0] > seq:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _whole(ledger: Ledger, prior: _Prior | None, path: Path | None) -> _Tree:
    """Check the whole log (against the last checkpoint signed here, if any)."""
    report = ledger.verify(quick=True, checkpoint=None if prior is None else prior.state.checkpoint)
    if not report.ok:
        against = prior is not None and any(f.kind in _PRIOR_KINDS for f in report.findings)
        raise _refused(report, path if against else None)
    if report.chain_size == 0 or report.tree_root is None:
        raise LedgerStateError("the log is empty", hint="run `kei init`")
    anchor = None
    entry = ledger.store.chain_at(report.chain_size - 1)
    if (
        report.tree_size == report.chain_size
        and entry is not None
        and entry.hash == report.head_hash
    ):
        anchor = Link(entry.position, entry.seq, entry.hash)
    return _Tree(report.tree_size, report.tree_root, report.tree_hashes, anchor)


def _refused(report: VerifyReport, state: Path | None) -> VerificationError:
    """Refuse to sign over findings; name the state file when the log no longer holds
    the checkpoint signed here last."""
    first = report.findings[0] if report.findings else None
    total = len(report.findings) + report.findings_omitted
    where = "" if first is None else f", the first at position {first.position}: {first.kind.value}"
    hint = None
    if state is not None:
        hint = (
            f"the log no longer holds the checkpoint this machine signed last ({state}); "
            "run `kei verify-chain` to see what changed"
        )
    error = VerificationError(
        f"the log has {total} finding(s){where}; no checkpoint was signed",
        position=None if first is None else first.position,
        kind="" if first is None else first.kind.value,
    )
    if hint is not None:
        error.hint = hint
    return error


def _remember(state_dir: Path, url: str, ledger_id: str, text: str, tree: _Tree) -> None:
    """Save what the next checkpoint resumes from; a failure only costs speed."""
    anchor = tree.anchor
    assert anchor is not None and anchor.seq is not None and anchor.hash is not None
    state = CheckpointState(
        ledger_id, text, anchor.seq, anchor.position, bytes(anchor.hash), tree.hashes
    )
    try:
        save_state(state_dir, url, state)
    except OSError as exc:
        log.warning("could not save the checkpoint state in %s: %s", state_dir, exc)
