"""What the leak matrix answers: a violation found by a scan, a refused write, and the
verdict on one event's fields (kept, redacted, flagged or blocked).

Pure values. Nothing here ever shows a pattern or a whole secret: a violation carries
at most the first 12 characters of its match (never more than half of it) and ``…``
(:func:`redact_match`); a blocked write names the rule and the field only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from msgspec import Struct

from kei.errors import LeakBlockedError

__all__ = ["CLEAN", "NO_FIELDS", "Blocked", "Verdict", "Violation", "redact_match"]

SHOWN_CHARS: Final = 12
_EMPTY: Mapping[str, tuple[str, ...]] = MappingProxyType({})
NO_FIELDS: Mapping[str, str] = MappingProxyType({})


class Violation(Struct, frozen=True):
    rule_id: str
    severity: str
    file: str
    line: int
    matched_redacted: str

    def to_dict(self) -> dict[str, object]:
        return {"rule_id": self.rule_id, "severity": self.severity, "file": self.file,
                "line": self.line, "matched_redacted": self.matched_redacted}  # fmt: skip


class Blocked(Struct, frozen=True):
    """The first ``block`` rule that matched, and the field it matched in."""

    rule_id: str
    field: str
    severity: str = "block"
    identifier: bool = False

    @property
    def message(self) -> str:
        what = self.severity
        if self.identifier:
            what += ": an identifier is refused, never redacted"
        return (f"refused to write: field {self.field!r} matches leak rule {self.rule_id!r} "
                f"({what}); nothing was appended")  # fmt: skip


class Verdict(Struct, frozen=True):
    """What the write path does with one event's free-text fields.

    ``fields`` holds every field's value to encode (redacted where a substitute rule
    matched); it is empty when the write is ``blocked``. ``redactions`` and ``warnings``
    map a field name to the rule ids that redacted or flagged it, in matrix order.
    """

    blocked: Blocked | None
    fields: Mapping[str, str]
    redactions: Mapping[str, tuple[str, ...]] = _EMPTY
    warnings: Mapping[str, tuple[str, ...]] = _EMPTY

    @property
    def ok(self) -> bool:
        return self.blocked is None

    @property
    def redacted_by(self) -> tuple[str, ...]:
        """Every rule id that redacted some field, once each: what the event records."""
        return _union(self.redactions.values())

    @property
    def warned_by(self) -> tuple[str, ...]:
        return _union(self.warnings.values())

    def raise_if_blocked(self) -> None:
        if self.blocked is not None:
            raise LeakBlockedError(
                self.blocked.message,
                hint="remove the secret from the text, or review the rule with `kei leaks list`",
            )


CLEAN: Final = Verdict(None, NO_FIELDS)
"""The verdict of a write nothing matched."""


def redact_match(match: str) -> str:
    """At most the first 12 characters of a match, never more than half of it, and ``…``."""
    return match[: min(SHOWN_CHARS, len(match) // 2)] + "…"


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(rid for group in groups for rid in group))
