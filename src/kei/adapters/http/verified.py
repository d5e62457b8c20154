"""``GET /v1/verify``: the log's verification, kept and extended, never redone per request.

The first request checks the whole log as ``kei verify-chain`` does (links, hashes and
signatures, through ``LogFollower.scan`` with the key registry); each later one checks
only what was appended since, from the link it stopped at. When the key registry
changed (a key added or revoked) the check goes on with the new registry, keeping the
findings so far. Requests share one check at a time (a lock): two never verify the
same rows twice.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kei.adapters.store.follow import LogFollower
from kei.app.json_form import rfc3339
from kei.domain.events import SYSTEM_STREAM
from kei.domain.log.findings import Finding

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger


class VerifyCache:
    """The verification of one ledger's log up to where it was last asked about."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._follower: LogFollower | None = None
        self._keys_at = -1
        self._kept: list[Finding] = []  # findings under an earlier key registry
        self._lock = threading.Lock()
        self._checked_us: int | None = None

    def status(self, now_us: int) -> dict[str, Any]:
        """``{"at", "ok", "verified_up_to", "verified_at", "head_hash", "findings"}``."""
        with self._lock:
            follower = self._extend()
            self._checked_us = now_us
            scanned = follower.scanned
            findings = [*self._kept, *scanned.findings]
            last = follower.link
            return {
                "at": follower.position,
                "ok": not findings and scanned.omitted == 0,
                "verified_up_to": follower.position,
                "verified_at": rfc3339(now_us),
                "head_hash": _hex(None if last is None else last.hash),
                "findings": [f.to_dict() for f in findings],
                "omitted": scanned.omitted,
            }

    def _extend(self) -> LogFollower:
        store = self.ledger.store
        head = store.max_position()
        ring = self.ledger.keyring(refresh=True)
        keys_at = store.stream_version(SYSTEM_STREAM)
        follower = self._follower
        if follower is None or keys_at != self._keys_at:
            if follower is not None:
                self._kept += follower.scanned.findings
            link = None if follower is None else follower.link
            position = None if follower is None else follower.position
            follower = LogFollower(store, link, position=position)
            follower.keys = ring
            self._follower, self._keys_at = follower, keys_at
        follower.upto = head
        while follower.scan():
            pass
        return follower


def _hex(digest: bytes | None) -> str | None:
    return None if digest is None else "sha256:" + digest.hex()
