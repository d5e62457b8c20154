"""What ``verify-chain`` reports (``VerifyReport``) and the bounds it runs under
(``VerifyLimits``), shared by the passes in ``verification.py`` and ``tree_pass.py``.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from kei.adapters.workers.verify_pool import SCAN_PAGE
from kei.domain.log.findings import Finding
from kei.limits import LIMITS


class VerifyLimits(Struct, frozen=True):
    """Every size verification works in, in one place."""

    page: int = SCAN_PAGE
    range_size: int = 10_000
    parallel_min: int = 20_000
    max_findings: int = LIMITS.max_verify_findings


class VerifyReport(Struct):
    """The outcome of one verification run."""

    url: str
    ledger_id: str | None
    events_checked: int = 0
    chain_size: int = 0
    head_hash: bytes | None = None
    quick: bool = False
    findings: list[Finding] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    findings_omitted: int = 0
    max_findings: int = LIMITS.max_verify_findings
    tree_size: int = 0
    tree_root: bytes | None = None
    tree_hashes: tuple[bytes, ...] = ()
    """The compact range of the recomputed tree (``CompactRange.hashes``), not reported."""

    @property
    def ok(self) -> bool:
        return not self.findings and not self.findings_omitted

    def add(self, found: list[Finding], omitted: int = 0) -> None:
        room = max(0, self.max_findings - len(self.findings))
        self.findings.extend(found[:room])
        self.findings_omitted += omitted + max(0, len(found) - room)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": self.url,
            "ledger_id": self.ledger_id,
            "events_checked": self.events_checked,
            "chain_size": self.chain_size,
            "head_hash": None if self.head_hash is None else "sha256:" + self.head_hash.hex(),
            "quick": self.quick,
            "checkpoint": self.checkpoint,
            "tree_size": self.tree_size,
            "tree_root": None if self.tree_root is None else "sha256:" + self.tree_root.hex(),
            "findings": [f.to_dict() for f in self.findings],
            "findings_omitted": self.findings_omitted,
        }
