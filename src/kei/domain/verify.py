"""Chain and signature verification over raw stored records: a pure core, no I/O.

``check_range`` walks records in position order and collects every finding; the
caller (``adapters/verification.py``) feeds it pages from a store, possibly in several
processes, and joins the ranges with ``check_link``. Steps, numbered as in
``docs/events.md`` §Verification:

1. every event has a chain entry;
2. sequence numbers count up by one (gaps: missing; repeats: duplicate; going back:
   reordered) and the first entry is sequence 0 with an all-zero previous hash;
3. each entry's previous hash equals the stored hash of the entry before it;
4. the hash recomputed from the stored bytes equals the stored hash;
5. (not in quick mode) the signer was active at that position and the signature is valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kei.domain.envelope import (
    GENESIS_PREV,
    MalformedEnvelopeError,
    chain_hash,
    open_state,
    signed_message,
)
from kei.domain.keyring import KeyRing, KeyStatus
from kei.domain.records import StoredRecord


class FindingKind(str, Enum):
    CONTENT_CHANGED = "content-changed"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    REVOKED_KEY = "revoked-key"
    CHAIN_BROKEN = "chain-broken"
    EVENT_MISSING = "event-missing"
    REORDERED = "events-reordered"
    DUPLICATE = "duplicate"
    TRUNCATED = "truncated"
    FORKED = "forked"
    BAD_CHECKPOINT = "checkpoint-invalid"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one position. ``position`` is None for log-wide findings."""

    kind: FindingKind
    position: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "position": self.position, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Link:
    """What the next entry needs to know about the entry before it."""

    position: int
    seq: int | None
    hash: bytes | None


@dataclass(slots=True)
class RangeResult:
    """Findings of one contiguous range plus its two edges, for joining ranges."""

    findings: list[Finding] = field(default_factory=list)
    count: int = 0
    first: StoredRecord | None = None
    last: Link | None = None


def check_link(prev: Link | None, record: StoredRecord) -> list[Finding]:
    """Steps 2 and 3: does ``record`` follow ``prev`` in sequence and by hash?"""
    pos, seq = record.position, record.seq
    if seq is None:
        return [Finding(FindingKind.CHAIN_BROKEN, pos, "event has no chain entry")]
    if prev is None:
        return _check_first(record)
    if prev.seq is None:
        return []
    expected = prev.seq + 1
    if seq == prev.seq:
        return [Finding(FindingKind.DUPLICATE, pos, f"sequence {seq} appears twice")]
    if seq < prev.seq:
        return [
            Finding(
                FindingKind.REORDERED,
                pos,
                f"sequence {seq} stored after sequence {prev.seq} (position {prev.position})",
            )
        ]
    if seq > expected:
        missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
        return [Finding(FindingKind.EVENT_MISSING, pos, f"sequence {missing} missing before it")]
    if record.prev_hash != prev.hash:
        return [
            Finding(
                FindingKind.CHAIN_BROKEN,
                pos,
                f"previous hash does not match the hash of position {prev.position}",
            )
        ]
    return []


def _check_first(record: StoredRecord) -> list[Finding]:
    if record.seq != 0:
        return [
            Finding(
                FindingKind.EVENT_MISSING, record.position, f"log starts at sequence {record.seq}"
            )
        ]
    if record.prev_hash != GENESIS_PREV:
        return [
            Finding(FindingKind.CHAIN_BROKEN, record.position, "first entry has a previous hash")
        ]
    return []


def check_content(record: StoredRecord) -> list[Finding]:
    """Step 4: recompute the entry hash from the stored bytes."""
    if record.seq is None or record.prev_hash is None:
        return []
    recomputed = chain_hash(
        record.prev_hash,
        record.seq,
        record.position,
        record.stream,
        record.version,
        record.type,
        record.state,
    )
    if recomputed != record.hash:
        return [
            Finding(
                FindingKind.CONTENT_CHANGED, record.position, "stored bytes do not match the hash"
            )
        ]
    return []


def check_signature(record: StoredRecord, keyring: KeyRing) -> list[Finding]:
    """Step 5: the signer was valid at this position and the signature verifies."""
    pos = record.position
    try:
        env = open_state(record.state)
    except MalformedEnvelopeError as exc:
        return [Finding(FindingKind.BAD_SIGNATURE, pos, f"no readable signature: {exc}")]
    status = keyring.status_at(env.key_id, pos)
    if status is KeyStatus.UNKNOWN or status is KeyStatus.NOT_YET:
        return [Finding(FindingKind.UNKNOWN_KEY, pos, f"signed by unknown key {env.key_id.hex()}")]
    entry = keyring.keys[env.key_id]
    if status is KeyStatus.REVOKED:
        return [
            Finding(
                FindingKind.REVOKED_KEY,
                pos,
                f"signed by key {env.key_id.hex()} revoked at position {entry.revoked_at}",
            )
        ]
    message = signed_message(record.stream, record.version, record.type, record.state)
    if not entry.verify(message, env.signature):
        return [
            Finding(FindingKind.BAD_SIGNATURE, pos, f"signature by {env.key_id.hex()} is invalid")
        ]
    return []


def check_range(
    records: Iterable[StoredRecord],
    keyring: KeyRing,
    *,
    quick: bool = False,
    prev: Link | None = None,
    link_first: bool = True,
) -> RangeResult:
    """Run steps 1-5 over a contiguous range of records, in position order.

    With ``link_first=False`` the first record's link is left to the caller, which
    knows the range before it (used when ranges are checked in parallel).
    """
    result = RangeResult()
    findings = result.findings
    for record in records:
        if result.first is None:
            result.first = record
            if link_first:
                findings.extend(check_link(prev, record))
        else:
            findings.extend(check_link(prev, record))
        findings.extend(check_content(record))
        if not quick:
            findings.extend(check_signature(record, keyring))
        prev = Link(record.position, record.seq, record.hash)
        result.count += 1
    result.last = prev
    return result
