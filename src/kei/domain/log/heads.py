"""Signed heads: each append transaction ends with a signature over the new chain head.

The chain hash needs no key, so someone who can write to the database but holds no key
could delete, insert, reorder or renumber events and recompute every chain hash. A
signed head closes that: the appending key signs (ledger id, the batch's sequence range,
the head's own counter, the chain hash of the batch's last entry), and verification
needs that signature to match the chain as stored. Rewriting anything before the last
signed head changes the chain hash a head signed, which no keyless writer can re-sign.

Rules (``docs/events.md`` §4b), checked by ``HeadChecker`` over head rows in counter
order and chain rows in position order, both streamed:

- heads tile the chain: counters 0, 1, 2, ... without a gap, head 0 starts at sequence
  0 and head k+1 starts right after head k ends (``head-missing`` otherwise);
- the chain entry at a head's last sequence is met in position order, and (unless
  quick) the head's key was active at that entry's position and its signature over
  ``head_message`` with that entry's stored hash is valid (``bad-head-signature``);
- no chained event lies after the last head (``unsigned-tail``), and no head signs a
  sequence past the chain's end (``truncated``).

Deleting the last events together with their head rows (truncation back to an
earlier head) leaves a log that satisfies every rule: only a checkpoint, pin or
witness kept elsewhere catches that.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeAlias

from msgspec import Struct, field

from kei.domain.log.envelope import KEY_ID_LEN, SIG_LEN
from kei.domain.log.findings import Finding, FindingKind
from kei.domain.log.keyring import KeyRing, KeyStatus
from kei.limits import LIMITS

HEAD_TAG: Final = b"kei/head/v1\x00"
_U32 = struct.Struct(">I").pack
_QQQ = struct.Struct(">QQQ").pack

HeadSigner: TypeAlias = Callable[[int, int, int, bytes], tuple[bytes, bytes]]
"""``sign_head(first_seq, seq, head_position, chain_hash) -> (key_id, signature)``:
what a store calls inside its append transaction, after linking the batch."""

HeadRow: TypeAlias = tuple[Any, ...]
"""(position, first_seq, seq, key_id, signature) of ``kei_heads``, unverified."""


def head_message(
    ledger_id: str, first_seq: int, seq: int, head_position: int, chain_hash: bytes
) -> bytes:
    """The bytes a head's signature covers (``docs/events.md`` §4b)."""
    lid = ledger_id.encode("utf-8")
    return b"".join(
        (HEAD_TAG, _U32(len(lid)), lid, _QQQ(first_seq, seq, head_position), chain_hash)
    )


def head_signer(ledger_id: str, key_id: bytes, sign: Callable[[bytes], bytes]) -> HeadSigner:
    """A ``HeadSigner`` for one ledger and one key (``sign`` is the key's ed25519 sign)."""

    def sign_head(
        first_seq: int, seq: int, head_position: int, chain_hash: bytes
    ) -> tuple[bytes, bytes]:
        return key_id, sign(head_message(ledger_id, first_seq, seq, head_position, chain_hash))

    return sign_head


class _Head(Struct, frozen=True, gc=False):
    """A head row with the types and sizes it must have (``_parse``).

    ``gc=False``, as ``RecordedEvent``: its fields are ints and bytes, so it can never
    be part of a reference cycle, and verifying a log of a million transactions makes a
    million of them, which the cycle collector need not track (a tenth less time to
    make one)."""

    position: int
    first_seq: int
    seq: int
    key_id: bytes
    signature: bytes


def _parse(row: HeadRow) -> _Head | None:
    """A head row with the types and sizes it must have, else None (runs once per
    append transaction, so checks are spelled out rather than generated)."""
    try:
        position, first_seq, seq, key_id, signature = row
        if type(key_id) is not bytes or type(signature) is not bytes:
            key_id, signature = bytes(key_id), bytes(signature)  # memoryview, bytearray
    except (TypeError, ValueError):
        return None
    if type(position) is not int or type(first_seq) is not int or type(seq) is not int:
        return None
    if position < 0 or first_seq < 0 or seq < first_seq:
        return None
    if len(key_id) != KEY_ID_LEN or len(signature) != SIG_LEN:
        return None
    return _Head(position, first_seq, seq, key_id, signature)


class HeadChecker(Struct):
    """The rules above, fed head rows (``add_heads``) ahead of chain rows (``feed``).

    ``reach`` tells the feeder how far the loaded heads go, so it loads heads a page
    at a time only as the chain walk needs them: memory stays flat. At most
    ``max_findings`` findings are kept; the rest are counted in ``omitted``.
    """

    ring: KeyRing
    ledger_id: str
    quick: bool = False
    max_findings: int = LIMITS.max_range_findings
    findings: list[Finding] = field(default_factory=list)
    omitted: int = 0
    heads_seen: int = 0
    _pending: deque[_Head] = field(default_factory=deque)
    _next_position: int = 0
    _next_first: int = 0
    _unsigned_from: tuple[int, Any] | None = None
    _last_seq: int = -1

    @classmethod
    def starting_at(
        cls, ring: KeyRing, ledger_id: str, position: int, first_seq: int
    ) -> HeadChecker:
        """A checker for heads that continue a log checked elsewhere: the first head
        must be number ``position`` and start at sequence ``first_seq`` (an import
        that extends a log starts mid-way; its first chain rows may follow that)."""
        checker = cls(ring, ledger_id)
        checker._next_position, checker._next_first = position, first_seq
        return checker

    @property
    def reach(self) -> int:
        """The highest sequence the loaded heads sign (-1: none loaded)."""
        return self._next_first - 1

    def add_heads(self, rows: Iterable[HeadRow]) -> None:
        """Check tiling of the next heads (in counter order) and queue them."""
        for row in rows:
            self.heads_seen += 1
            head = _parse(row)
            if head is None:
                detail = f"head row {row[0] if row else '?'!r} is malformed"
                self._add(FindingKind.BAD_HEAD_SIGNATURE, None, detail)
                continue
            if head.position != self._next_position:
                detail = f"head {self._next_position} is missing (next is head {head.position})"
                self._add(FindingKind.HEAD_MISSING, None, detail)
            if head.first_seq != self._next_first:
                detail = (
                    f"head {head.position} covers sequences {head.first_seq}..{head.seq}, "
                    f"but the heads before it end at sequence {self._next_first - 1}"
                )
                self._add(FindingKind.HEAD_MISSING, None, detail)
            self._next_position = head.position + 1
            self._next_first = max(self._next_first, head.seq + 1)
            self._pending.append(head)

    def feed(self, rows: Iterable[tuple[Any, Any, Any]]) -> None:
        """Chain rows (position, hash, seq) in position order.

        Most rows sign nothing: a row below the next head's sequence costs one
        comparison (this runs for every event, also under ``--quick``)."""
        pending = self._pending
        nxt = pending[0].seq if pending else -1
        last = self._last_seq
        for position, stored, seq in rows:
            if type(seq) is not int:
                continue
            if seq < nxt:
                if seq > last:  # noqa: PLR1730 - cheaper than max() in the hot loop
                    last = seq
                continue
            while pending and pending[0].seq < seq:
                head = pending.popleft()
                detail = (
                    f"head {head.position} signs sequence {head.seq}, which the chain does "
                    "not hold in position order"
                )
                self._add(FindingKind.BAD_HEAD_SIGNATURE, None, detail)
            if pending and pending[0].seq == seq:
                self._check(pending.popleft(), position, stored)
            elif seq > self._next_first - 1 and self._unsigned_from is None:
                self._unsigned_from = (position, seq)  # past every head (all are loaded)
            last = max(last, seq)
            nxt = pending[0].seq if pending else -1
        self._last_seq = last

    def feed_run(self, first_seq: int, count: int, entry: Callable[[int], tuple[int, Any]]) -> None:
        """``feed`` of the chain rows of sequences ``first_seq .. first_seq + count - 1``,
        one after the other in position order (a run that links); ``entry(seq)`` gives
        a row's (position, stored hash) and is asked only for rows where something
        happens: those at a head's sequence, or the first past every head.

        The same findings as ``feed`` of every row of the run, at a cost per head,
        not per row (the rows between heads only move ``_last_seq``)."""
        end, seq, pending = first_seq + count, first_seq, self._pending
        while seq < end:
            if pending:
                if seq < pending[0].seq:  # no head signs these: skip to the next one
                    seq = min(pending[0].seq, end)
                    continue
            elif self._unsigned_from is not None:
                break
            elif seq < self._next_first:  # covered by a head already checked or refused
                seq = min(self._next_first, end)
                continue
            position, stored = entry(seq)
            self.feed(((position, stored, seq),))
            seq += 1
        if count > 0 and end - 1 > self._last_seq:
            self._last_seq = end - 1

    def finish(self) -> list[Finding]:
        """Call once every head and chain row was fed: the tail rules."""
        if self._unsigned_from is not None:
            position, seq = self._unsigned_from
            detail = f"events from sequence {seq} on are not covered by a signed head"
            self._add(FindingKind.UNSIGNED_TAIL, position, detail)
        if self._pending:
            head = self._pending[0]
            detail = (
                f"head {head.position} signs sequence {head.seq}, past the chain's last "
                f"sequence {self._last_seq} ({len(self._pending)} head(s) past the end)"
            )
            self._add(FindingKind.TRUNCATED, None, detail)
            self._pending.clear()
        return self.findings

    def _check(self, head: _Head, position: Any, stored: Any) -> None:
        if self.quick:
            return
        pos = position if type(position) is int else -1
        status = self.ring.status_at(head.key_id, pos)
        if status is not KeyStatus.ACTIVE:
            detail = f"head {head.position} is signed by key {head.key_id.hex()} ({status.value})"
            self._add(FindingKind.BAD_HEAD_SIGNATURE, position, detail)
            return
        chain_hash = bytes(stored) if isinstance(stored, (bytes, memoryview)) else b""
        message = head_message(self.ledger_id, head.first_seq, head.seq, head.position, chain_hash)
        if not self.ring.keys[head.key_id].verify(message, head.signature):
            detail = f"the signature of head {head.position} does not match the chain"
            self._add(FindingKind.BAD_HEAD_SIGNATURE, position, detail)

    def _add(self, kind: FindingKind, position: Any, detail: str) -> None:
        if len(self.findings) >= self.max_findings:
            self.omitted += 1
            return
        self.findings.append(Finding(kind, position if type(position) is int else None, detail))
