"""``kei hibernate inspect``: read a bundle through, write nothing, report every problem.

The reader runs leniently (``reader.py``): an unsafe, unlisted, duplicated or
mismatched entry is recorded and skipped, and reading goes on; a problem that stops
reading (no manifest, a damaged or truncated stream, a bomb) is recorded last.
Segments are decoded and their chain checked within the bundle (links and hashes,
as ``verify-chain --quick``; the first entry's link to what comes before it and the
signatures need the ledger, which is ``kei replay --dry-run``'s job). The checkpoint
must match the manifest's head and carry the exporter's signature.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from kei.app.bundle.content import BundleContent
from kei.app.bundle.layout import CHECKPOINT, BundleLimits
from kei.app.bundle.manifest import Manifest
from kei.app.bundle.reader import BundleReader
from kei.domain.log.checkpoint import parse_checkpoint, signed_by
from kei.domain.log.keyring import KeyRing
from kei.domain.log.verify import RangeChecker
from kei.errors import BundleError, CheckpointFormatError


class Inspection(Struct):
    """What inspecting a bundle found."""

    path: str
    manifest: Manifest | None = None
    problems: list[BundleError] = field(default_factory=list)
    events_read: int = 0

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": self.path,
            "manifest": None if self.manifest is None else self.manifest.to_dict(),
            "events_read": self.events_read,
            "problems": [
                {"kind": p.kind, "entry": p.entry, "detail": str(p)} for p in self.problems
            ],
        }


def inspect_bundle(path: Path, *, limits: BundleLimits = BundleLimits()) -> Inspection:
    """Check the structure of the bundle at ``path`` without writing anything."""
    found = Inspection(str(path))
    with closing(BundleReader(path, limits=limits, strict=False)) as reader:
        try:
            found.manifest = reader.manifest()
            content = BundleContent(found.manifest)
            checker = RangeChecker(KeyRing(), quick=True, link_first=False)
            for rows in content.rows(reader):
                checker.feed(rows)
                found.events_read += len(rows)
        except BundleError as exc:
            reader.problems.append(exc)
        else:
            for f in checker.result.findings:
                reader.problems.append(
                    BundleError(f"{f}", kind=f"events:{f.kind.value}", entry=None)
                )
            if CHECKPOINT in content.proofs:
                _check_checkpoint(found.manifest, content.proofs[CHECKPOINT], reader.problems)
        found.problems = reader.problems
    return found


def _check_checkpoint(m: Manifest, raw: bytes, problems: list[BundleError]) -> None:
    def bad(detail: str) -> None:
        problems.append(BundleError(f"{CHECKPOINT}: {detail}", kind="checkpoint"))

    try:
        cp = parse_checkpoint(raw.decode("utf-8"))
    except (UnicodeDecodeError, CheckpointFormatError) as exc:
        bad(f"not a checkpoint ({exc})")
        return
    if raw.decode() != m.checkpoint:
        bad("differs from the manifest's checkpoint")
    if cp.origin != m.ledger_id:
        bad(f"names ledger {cp.origin}, the manifest {m.ledger_id}")
    if cp.size != m.last_seq + 1 or "sha256:" + cp.head_hash.hex() != m.head_hash:
        bad("does not cover the manifest's head")
    if signed_by(cp, [bytes.fromhex(m.exporter_public_key)]) is None:
        bad("is not signed by the exporter key")
