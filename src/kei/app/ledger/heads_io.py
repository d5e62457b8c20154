"""Signed heads carried outside the store: in bundles (``proof/heads``) and JSON lines.

Bundles and ``kei events import`` copy a log verbatim, so they must copy its signed
heads too, or the copy would verify with an unsigned tail. Both carry the head rows
of the range they hold (every head whose last sequence lies in it) and check them
against the staged chain (``check_staged_heads``) before anything reaches the target.

``proof/heads`` is a run of fixed 96-byte records, one per head in counter order:
u64be position ‖ u64be first_seq ‖ u64be seq ‖ 8-byte key id ‖ 64-byte signature.
"""

from __future__ import annotations

import struct
from typing import Final

from kei.adapters.store.base import CHAIN_TABLE, EventStore
from kei.domain.log.findings import Finding
from kei.domain.log.heads import HeadChecker, HeadRow
from kei.domain.log.keyring import KeyRing

RECORD: Final = struct.Struct(">QQQ8s64s")
PAGE: Final = 5_000


def encode_heads(rows: list[HeadRow]) -> bytes:
    """The bytes of ``proof/heads`` for ``rows``."""
    return b"".join(RECORD.pack(p, f, s, bytes(k), bytes(sig)) for p, f, s, k, sig in rows)


def decode_heads(data: bytes) -> list[HeadRow]:
    """The head rows of ``proof/heads``; ValueError when it is not whole records."""
    if len(data) % RECORD.size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {RECORD.size}-byte heads")
    return [tuple(r) for r in RECORD.iter_unpack(data)]


def heads_from(store: EventStore, first_seq: int) -> list[HeadRow]:
    """Every head whose last sequence is ``first_seq`` or later, in counter order."""
    found: list[HeadRow] = []
    after = -1
    while rows := store.read_heads(after=after, limit=PAGE):
        found += [
            (int(r[0]), int(r[1]), int(r[2]), bytes(r[3]), bytes(r[4]))
            for r in rows
            if r[2] >= first_seq
        ]
        after = int(rows[-1][0])
    return found


def check_staged_heads(staged: EventStore, ring: KeyRing, heads: list[HeadRow]) -> list[Finding]:
    """The head rules (``kei.domain.log.heads``) over a staged copy of part of a log: the
    heads must cover every staged row from its first, tile, and sign the staged hashes.
    Nothing to check for a ledger whose genesis declares no heads."""
    if not ring.signed_heads or ring.ledger_id is None:
        return []
    sql = (
        f"SELECT position, hash, seq FROM {CHAIN_TABLE} WHERE position > ? "
        "ORDER BY position LIMIT ?"
    )
    first = staged.select(sql, (-1, 1))
    if not heads:
        start = (0, 0)
    else:
        start = (int(heads[0][0]), int(heads[0][1]))
        if first and type(first[0][2]) is int and start[1] > first[0][2]:
            start = (start[0], int(first[0][2]))  # the first staged rows are uncovered
    checker = HeadChecker.starting_at(ring, ring.ledger_id, *start)
    checker.add_heads(heads)
    after = -1
    while rows := staged.select(sql, (after, PAGE)):
        checker.feed(rows)
        after = int(rows[-1][0])
    return checker.finish()
