"""``GET /v1/verify``: the log's verification, kept and extended, never redone per request.

The first request checks the whole log as ``kei verify-chain`` does (links, hashes and
signatures, through ``LogFollower.scan`` with the key registry); each later one checks
only what was appended since, from the link it stopped at. When the key registry
changed (a key added or revoked) the check goes on with the new registry, keeping the
findings so far. Requests share one check at a time (a lock): two never verify the
same rows twice.

Rows already verified can still be changed behind kei's back (an edited database), so
every ``every`` seconds a request also starts a whole new pass on a thread of its own;
the answers keep coming from the current pass meanwhile, and the new one replaces it
when done (its findings, or none, are then what the answers say).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from kei.adapters.store.follow import LogFollower
from kei.app.json_form import rfc3339
from kei.domain.events import SYSTEM_STREAM
from kei.domain.log.findings import Finding

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger


class _Pass:
    """One verification from the start of the log, extended as the log grows."""

    def __init__(self) -> None:
        self.follower: LogFollower | None = None
        self.keys_at = -1
        self.kept: list[Finding] = []  # findings under an earlier key registry

    def extend(self, ledger: Ledger) -> LogFollower:
        store = ledger.store
        head = store.max_position()
        keys_at = store.stream_version(SYSTEM_STREAM)
        follower = self.follower
        if follower is None or keys_at != self.keys_at:
            if follower is not None:
                self.kept += follower.scanned.findings
            link = None if follower is None else follower.link
            position = None if follower is None else follower.position
            follower = LogFollower(store, link, position=position)
            follower.keys = ledger.keyring(refresh=True)
            self.follower, self.keys_at = follower, keys_at
        follower.upto = head
        while follower.scan():
            pass
        return follower


class VerifyCache:
    """The verification of one ledger's log up to where it was last asked about."""

    def __init__(self, ledger: Ledger, *, every: float = 600.0) -> None:
        self.ledger, self.every = ledger, every
        self._current = _Pass()
        self._lock = threading.Lock()
        self._started = time.monotonic()  # when the current pass began
        self._fresh: threading.Thread | None = None

    def status(self, now_us: int) -> dict[str, Any]:
        """``{"at", "ok", "verified_up_to", "verified_at", "head_hash", "findings"}``."""
        with self._lock:
            current = self._current
            follower = current.extend(self.ledger)
            self._maybe_start_fresh()
            scanned = follower.scanned
            findings = [*current.kept, *scanned.findings]
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

    def _maybe_start_fresh(self) -> None:
        due = self.every > 0 and time.monotonic() - self._started >= self.every
        if not due or self._fresh is not None:
            return
        self._started = time.monotonic()
        self._fresh = threading.Thread(target=self._run_fresh, name="kei-verify", daemon=True)
        self._fresh.start()

    def _run_fresh(self) -> None:
        fresh = _Pass()
        try:
            fresh.extend(self.ledger)
        finally:
            with self._lock:
                if fresh.follower is not None:
                    self._current = fresh
                self._fresh = None


def _hex(digest: bytes | None) -> str | None:
    return None if digest is None else "sha256:" + digest.hex()
