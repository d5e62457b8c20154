"""What a replay reports: each projection digest compared, the counts, the outcome.

Shared by ``replay.py`` and the CLI; ``to_dict`` is the ``--json`` form.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from kei.app.bundle.manifest import Manifest, ProjectionDigest


class DigestCheck(Struct, frozen=True):
    name: str
    expected: str | None
    found: str | None
    status: str  # matched, differs, not-compared

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expected": self.expected, "found": self.found,
                "status": self.status}  # fmt: skip


class ReplayReport(Struct):
    """What a replay checked and did."""

    source: str
    target: str
    mode: str
    dry_run: bool
    manifest: Manifest
    appended: int = 0
    keys: int = 0
    digests: list[DigestCheck] = field(default_factory=list)
    live: list[DigestCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(d.status != "differs" for d in [*self.digests, *self.live])

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "ok": self.ok, "source": self.source, "target": self.target, "mode": self.mode,
            "dry_run": self.dry_run, "ledger_id": m.ledger_id, "events": m.events,
            "appended": self.appended, "first_position": m.first_position,
            "last_position": m.last_position, "head_hash": m.head_hash, "keys": self.keys,
            "digests": [d.to_dict() for d in self.digests],
            "live_digests": [d.to_dict() for d in self.live],
        }  # fmt: skip


def compare(
    expected: tuple[ProjectionDigest, ...], found: list[ProjectionDigest]
) -> list[DigestCheck]:
    """Each projection of the manifest against the rebuilt one of the same name.

    A projection that this kei does not have, or has at another version, cannot be
    compared and is said so; it is not a mismatch.
    """
    here = {d.name: d for d in found}
    checks = []
    for d in expected:
        mine = here.get(d.name)
        if mine is None or mine.version != d.version:
            checks.append(DigestCheck(d.name, d.digest, None, "not-compared"))
        else:
            status = "matched" if mine.digest == d.digest else "differs"
            checks.append(DigestCheck(d.name, d.digest, mine.digest, status))
    return checks
