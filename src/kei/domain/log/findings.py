"""What verification reports: a finding is one problem at one position, of one kind.

Its own module so that the stores, bundles, pins and checkpoints that report findings
need not import the verifier; ``FindingKind`` values are stable strings, part of
``kei verify-chain --json`` (docs/cli.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from msgspec import Struct

__all__ = ["Finding", "FindingKind"]


class Finding(Struct, frozen=True):
    """One problem at one position. ``position`` is None for log-wide findings."""

    kind: FindingKind
    position: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "position": self.position, "detail": self.detail}

    def __str__(self) -> str:
        where = "log" if self.position is None else f"position {self.position}"
        return f"{where}: {self.kind.value}: {self.detail}"


class FindingKind(StrEnum):
    """Every kind of problem ``kei verify-chain`` can report (``Finding.kind``)."""

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
    STORED_TREE = "stored-tree-hash"
    BAD_FORMAT = "bad-format"
    BAD_GENESIS = "bad-genesis"
    SECOND_GENESIS = "second-genesis"
    BAD_KEY_EVENT = "bad-key-event"
    VERSION_GAP = "version-gap"
    WITNESS_QUORUM = "witness-quorum"
    PIN_MISMATCH = "pin-mismatch"
    BAD_HEAD_SIGNATURE = "bad-head-signature"
    HEAD_MISSING = "head-missing"
    UNSIGNED_TAIL = "unsigned-tail"
