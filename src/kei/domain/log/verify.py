"""Chain and signature verification over raw stored rows: a pure core, no I/O.

A ``RangeChecker`` walks rows in position order, page by page, and collects every
finding; the caller (``app/ledger/verification.py``) feeds it pages from a store,
possibly in several processes, and joins the ranges with ``check_row_link``. Steps,
numbered as in ``docs/events.md`` §5:

1. every event has a chain entry;
2. sequence numbers count up by one (gaps: missing; repeats: duplicate; going back:
   reordered) and the first entry is sequence 0 with an all-zero previous hash;
3. each entry's previous hash equals the stored hash of the entry before it;
4. the hash recomputed from the stored bytes equals the stored hash;
5. (not in quick mode) the signer was active at that position and the signature is valid.

Rows are unverified tuples exactly as stored (``Row``): stream and type as their UTF-8
bytes, so nothing is decoded and re-encoded before hashing, and any column may hold
anything (a wrong type is a finding, never a crash). The loop allocates nothing per
clean row beyond the hash input, which is what makes ``--quick`` fast.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Any, Final, TypeAlias

from msgspec import Struct, field

from kei.domain.log.envelope import (
    CHAIN_TAG,
    EVENT_TAG,
    FORMAT_V1,
    GENESIS_PREV,
    HEADER_LEN,
    KEY_ID_LEN,
    SIG_LEN,
    chain_hash,
    chained_prefix,
)
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.keyring import KeyRing
from kei.domain.log.records import StoredRecord
from kei.limits import LIMITS

Row: TypeAlias = tuple[Any, ...]
"""(position, stream bytes, version, type bytes, state, seq, prev_hash, hash); unverified."""

Edge: TypeAlias = tuple[int, Any, Any]
"""(position, seq, prev_hash) of a range's first row, for joining ranges."""

_MALFORMED: Final = (TypeError, ValueError, struct.error, OverflowError)
_SIG_START: Final = 1 + KEY_ID_LEN
_SIG_END: Final = _SIG_START + SIG_LEN
_QQ = struct.Struct(">QQ").pack
_U32 = struct.Struct(">I").pack
_U64 = struct.Struct(">Q").pack
_UNCHAINED: Final = object()


class Link(Struct, frozen=True):
    """What the next entry needs to know about the entry before it."""

    position: int
    seq: int | None
    hash: bytes | None


class RangeResult(Struct):
    """Findings of one contiguous range plus its two edges, for joining ranges."""

    findings: list[Finding] = field(default_factory=list)
    count: int = 0
    first: Edge | None = None
    last: Link | None = None
    omitted: int = 0
    unchained: int = 0


def check_row_link(prev: Link | None, position: int, seq: Any, prev_hash: Any) -> list[Finding]:
    """Steps 1-3: does the entry (``seq``, ``prev_hash``) follow ``prev``?"""
    if seq is None:
        return [Finding(FindingKind.CHAIN_BROKEN, position, "event has no chain entry")]
    if type(seq) is not int:
        return [Finding(FindingKind.CHAIN_BROKEN, position, f"sequence {seq!r} is not an integer")]
    if prev is None:
        return _check_first(position, seq, prev_hash)
    if prev.seq is None:
        return []
    if seq == prev.seq:
        detail = f"sequence {seq} appears twice (also at position {prev.position})"
        return [Finding(FindingKind.DUPLICATE, position, detail)]
    if seq < prev.seq:
        detail = f"sequence {seq} stored after sequence {prev.seq} (position {prev.position})"
        return [Finding(FindingKind.REORDERED, position, detail)]
    expected = prev.seq + 1
    if seq > expected:
        missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
        return [
            Finding(FindingKind.EVENT_MISSING, position, f"sequence {missing} missing before it")
        ]
    if prev_hash != prev.hash:
        detail = f"previous hash does not match the hash of position {prev.position}"
        return [Finding(FindingKind.CHAIN_BROKEN, position, detail)]
    return []


def check_link(prev: Link | None, record: StoredRecord) -> list[Finding]:
    """Steps 1-3 for one record (the record-shaped face of ``check_row_link``)."""
    return check_row_link(prev, record.position, record.seq, record.prev_hash)


def _check_first(position: int, seq: int, prev_hash: Any) -> list[Finding]:
    if seq != 0:
        return [Finding(FindingKind.EVENT_MISSING, position, f"log starts at sequence {seq}")]
    if prev_hash != GENESIS_PREV:
        return [Finding(FindingKind.CHAIN_BROKEN, position, "first entry has a previous hash")]
    return []


def check_content(record: StoredRecord) -> list[Finding]:
    """Step 4: recompute the entry hash from the stored bytes."""
    if record.seq is None or record.prev_hash is None:
        return []
    try:
        recomputed: bytes | None = chain_hash(
            record.prev_hash, record.seq, record.position, record.stream,
            record.version, record.type, record.state,
        )  # fmt: skip
    except _MALFORMED:
        recomputed = None
    if recomputed != record.hash:
        return [_content_changed(record.position)]
    return []


def _content_changed(position: int) -> Finding:
    return Finding(FindingKind.CONTENT_CHANGED, position, "stored bytes do not match the hash")


def check_row_signature(keyring: KeyRing, row: Row) -> Finding | None:
    """Step 5 for one row: signer known and active at this position, signature valid."""
    pos, stream, version, type_, state = row[0], row[1], row[2], row[3], row[4]
    if type(state) is not bytes or len(state) < HEADER_LEN or state[0] != FORMAT_V1:
        return _bad_format(pos, state)
    key_id = state[1:_SIG_START]
    entry = keyring.keys.get(key_id)
    if entry is None or pos < entry.added_at:
        return Finding(FindingKind.UNKNOWN_KEY, pos, f"signed by unknown key {key_id.hex()}")
    if entry.revoked_at is not None and pos > entry.revoked_at:
        detail = f"signed by key {key_id.hex()} revoked at position {entry.revoked_at}"
        return Finding(FindingKind.REVOKED_KEY, pos, detail)
    try:
        message = b"".join((
            EVENT_TAG, _U32(len(stream)), stream, _U64(version), _U32(len(type_)), type_,
            state[:_SIG_START], state[_SIG_END:],
        ))  # fmt: skip
    except _MALFORMED:
        message = b""
    if not message or not entry.verify(message, state[_SIG_START:_SIG_END]):
        return Finding(FindingKind.BAD_SIGNATURE, pos, f"signature by {key_id.hex()} is invalid")
    return None


def _bad_format(position: int, state: Any) -> Finding:
    """The envelope cannot be read, so neither can its signature."""
    if type(state) is not bytes:
        what = f"state is a {type(state).__name__}, not bytes"
    elif len(state) < HEADER_LEN:
        what = f"state of {len(state)} bytes is shorter than the {HEADER_LEN}-byte header"
    else:
        what = f"format byte is {state[0]:#04x}, not {FORMAT_V1:#04x}"
    return Finding(FindingKind.BAD_FORMAT, position, f"no readable signature: {what}")


def check_signature(record: StoredRecord, keyring: KeyRing) -> list[Finding]:
    """Step 5 for one record."""
    found = check_row_signature(keyring, row_of(record))
    return [] if found is None else [found]


def row_of(record: StoredRecord) -> Row:
    """The ``Row`` form of a record (stream and type as their UTF-8 bytes)."""
    return (
        record.position, record.stream.encode(), record.version, record.type.encode(),
        record.state, record.seq, record.prev_hash, record.hash,
    )  # fmt: skip


class RangeChecker:
    """Steps 1-5 over a contiguous range of rows, fed in position order, page by page.

    Links are checked against the *reference* entry: the one with the highest sequence
    number so far (normally the row before). A step back or a repeat does not move it,
    so one misplaced entry is one finding, not a cascade.

    With ``link_first=False`` the range "floats": the reference before it is unknown,
    its first chained row is taken as the reference unchecked and returned as
    ``RangeResult.first``, and the caller, which knows the range before it, checks that
    edge (used when ranges are checked in parallel). At most ``max_findings`` findings
    are kept; the rest are only counted.
    """

    def __init__(
        self,
        keyring: KeyRing,
        *,
        quick: bool = False,
        prev: Link | None = None,
        link_first: bool = True,
        max_findings: int = LIMITS.max_range_findings,
    ) -> None:
        self.result = RangeResult(last=prev)
        self._ring = keyring
        self._quick = quick
        self._floating = not link_first
        self._max = max_findings

    def _add(self, found: Iterable[Finding]) -> None:
        for finding in found:
            if len(self.result.findings) < self._max:
                self.result.findings.append(finding)
            else:
                self.result.omitted += 1

    def _link(
        self, ref: Link | None, pos: int, seq: Any, p_hash: Any, stored: Any
    ) -> tuple[list[Finding], Link | None]:
        """Steps 1-3 off the fast path: the findings and the new reference, if it moves."""
        if type(seq) is not int:
            self.result.unchained += seq is None
            return check_row_link(ref, pos, seq, p_hash), None
        if self._floating:
            self._floating = False
            self.result.first = (pos, seq, p_hash)
            return [], Link(pos, seq, stored)
        found = check_row_link(ref, pos, seq, p_hash)
        if ref is None or ref.seq is None or seq > ref.seq:
            return found, Link(pos, seq, stored)
        return found, None

    def feed(self, rows: Iterable[Row]) -> None:
        """Check the next rows; the hot loop of ``verify-chain``.

        A clean row costs one comparison for its link, one hash and (unless quick)
        one signature check; anything unusual goes to ``_link``.
        """
        res, add, ring, quick = self.result, self._add, self._ring, self._quick
        sha, join = hashlib.sha256, b"".join
        ref = res.last
        ref_pos, ref_seq, ref_hash = (0, None, None) if ref is None else _fields(ref)
        expected: object = _UNCHAINED if ref_seq is None else ref_seq + 1
        count = 0
        for row in rows:
            pos, stream, version, type_, state, seq, p_hash, stored = row
            count += 1
            if seq == expected and p_hash == ref_hash:
                ref_pos, ref_seq, ref_hash, expected = pos, seq, stored, seq + 1
            else:
                ref = None if ref_seq is None else Link(ref_pos, ref_seq, ref_hash)
                found, moved = self._link(ref, pos, seq, p_hash, stored)
                add(found)
                if moved is not None:
                    ref_pos, ref_seq, ref_hash = _fields(moved)
                    expected = _UNCHAINED if ref_seq is None else ref_seq + 1
            try:
                digest = sha(join((
                    CHAIN_TAG, p_hash, _QQ(seq, pos), _U32(len(stream)), stream,
                    _U64(version), _U32(len(type_)), type_, state,
                ))).digest()  # fmt: skip
            except _MALFORMED:
                digest = None
            if digest != stored and seq is not None:
                add((_content_changed(pos),))
            if not quick:
                found_sig = check_row_signature(ring, row)
                if found_sig is not None:
                    add((found_sig,))
        res.count += count
        if ref_seq is not None:
            res.last = Link(ref_pos, ref_seq, ref_hash)


def _fields(link: Link) -> tuple[int, int | None, bytes | None]:
    return link.position, link.seq, link.hash


def check_range(
    records: Iterable[StoredRecord],
    keyring: KeyRing,
    *,
    quick: bool = False,
    prev: Link | None = None,
    link_first: bool = True,
) -> RangeResult:
    """Run steps 1-5 over records (the record-shaped face of ``RangeChecker``)."""
    checker = RangeChecker(keyring, quick=quick, prev=prev, link_first=link_first)
    checker.feed(row_of(r) for r in records)
    return checker.result


def first_break(records: list[StoredRecord], link: Link | None) -> tuple[int, Finding | None]:
    """The index of the first record that does not link to the one before it (``link``
    for the first) or whose stored bytes do not hash to its hash, and what is wrong;
    ``(len(records), None)`` when all are good.

    Readers that trust what they read only after this check (projections, exports)
    call it per page. Runs of good records go through ``chained_prefix``; the record
    it stops at (or the first of the log) is checked one by one, which names the fault.
    """
    i = 0
    while i < len(records):
        if link is not None and link.seq is not None and link.hash is not None:
            i = chained_prefix(records, i, link.seq, link.hash)
            if i == len(records):
                break
            if i > 0:
                r = records[i - 1]
                link = Link(r.position, r.seq, r.hash)
        record = records[i]
        found = [*check_link(link, record), *check_content(record)]
        if found:
            return i, found[0]
        link = Link(record.position, record.seq, record.hash)
        i += 1
    return len(records), None
