"""``kei projections verify``: every live read model against a fresh fold of the log.

Each projection is re-folded from the log, up to the position its live state row
names, into a private scratch SQLite file (``ProjectionEngine(..., scratch=True)``,
as ``kei replay`` does), and the two state digests are compared. Nothing in the
live database is trusted or changed: no catch-up, no seal check, no rebuild (the
live engine only creates tables that are missing). A live state row that names an
event the log does not hold is a mismatch without a fold.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from kei.adapters.store.base import EventStore

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger

__all__ = ["Audit", "audit_read_models"]


class Audit(Struct, frozen=True):
    """One projection: its live position and digest, the re-folded digest, and why
    they disagree (None when they match)."""

    name: str
    position: int
    live: bytes
    rebuilt: bytes | None
    problem: str | None

    @property
    def matched(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position,
            "matched": self.matched,
            "live_digest": "sha256:" + self.live.hex(),
            "rebuilt_digest": None if self.rebuilt is None else "sha256:" + self.rebuilt.hex(),
            "problem": self.problem,
        }


def audit_read_models(ledger: Ledger) -> list[Audit]:
    """Every shipped projection in ``ledger``'s database compared with its fold of the log."""
    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.projections.registry import default_projections

    store = ledger.store
    live = ProjectionEngine(ledger.url, store, default_projections())
    try:
        states = live.states()
        off_log = live.off_log()
        digests = {n: live.digest(n) for n in states}
    finally:
        live.close()
    at: dict[int, list[str]] = {}
    for name, (version, position) in states.items():
        if name not in off_log and version == live.projections[name].version:
            at.setdefault(position, []).append(name)
    rebuilt: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="kei-verify-") as folder:
        for i, (position, names) in enumerate(sorted(at.items())):
            rebuilt.update(_fold(store, position, names, Path(folder) / f"fold-{i}.db"))
    out = []
    for name, (version, position) in states.items():
        problem = off_log.get(name)
        code_version = live.projections[name].version
        if problem is None and version != code_version:
            problem = f"version {version}, this code folds version {code_version}"
        if problem is None and rebuilt[name] != digests[name]:
            problem = "its rows differ from a fold of the log up to that position"
        out.append(Audit(name, position, digests[name], rebuilt.get(name), problem))
    return out


def _fold(store: EventStore, position: int, names: list[str], path: Path) -> dict[str, bytes]:
    """``names`` folded from the log up to ``position`` in a scratch file: their digests."""
    from kei.adapters.readmodels.engine import ProjectionEngine
    from kei.app.bundle.digests import HeadView
    from kei.projections.registry import default_projections

    view = HeadView(store, position, None, position)
    chosen = [p for p in default_projections() if p.name in names]
    engine = ProjectionEngine(f"sqlite:///{path}", view.as_store(), chosen, scratch=True)
    try:
        engine.catch_up()
        return {n: engine.digest(n) for n in names}
    finally:
        engine.close()
