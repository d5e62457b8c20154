"""What one import knows about a module: its manifest's facts and its trait scores."""

from __future__ import annotations

from msgspec import Struct

from kei.domain.project.traits import CONFIDENT, WEAK, TraitScore


class ModuleFacts(Struct, frozen=True, kw_only=True):
    """One module as identified (or, with ``error``, a manifest that could not be read)."""

    module_id: str
    kind: str
    manifest_path: str
    name: str = ""
    files: int = 0
    sloc: int = 0
    content_sha256: str = ""
    languages: tuple[str, ...] = ()
    matches: tuple[TraitScore, ...] = ()
    error: str | None = None

    @property
    def best(self) -> TraitScore | None:
        """The best match (they are kept best first), None when none reached ``WEAK``."""
        return self.matches[0] if self.matches else None

    def confident(self, threshold: float = CONFIDENT) -> TraitScore | None:
        best = self.best
        return best if best is not None and best.confidence >= threshold else None

    def weak(self, threshold: float = CONFIDENT) -> TraitScore | None:
        best = self.best
        if best is None or best.confidence >= threshold or best.confidence < WEAK:
            return None
        return best
