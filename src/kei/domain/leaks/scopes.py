"""One scope's rules, compiled once for the write path's fast checks.

A :class:`Matrix` (``matrix.py``) splits its rules per scope at construction: by
severity, the identifier-refusing rules sorted by shortest match, the shortest match
of any rule, a literal prefilter (``prefilter.py``), so a value no rule can match
costs one C-level search, and, for a value that gets past it, the sharp prefilter
(``sharp.py``) that names the few rules whose every required literal the value holds.
The sharp prefilter is built only when a value first gets past the first one.
"""

from __future__ import annotations

import re

from msgspec import Struct, field

from kei.domain.leaks.prefilter import any_literal
from kei.domain.leaks.rules import Rule
from kei.domain.leaks.sharp import Sharp

__all__ = ["ScopeRules", "split_scope"]


class ScopeRules(Struct, frozen=True):
    """One scope's rules, split once by what they do."""

    scanning: tuple[Rule, ...]
    block: tuple[Rule, ...]
    substitute: tuple[Rule, ...]
    warn: tuple[Rule, ...]
    refuse_id: tuple[Rule, ...]  # block and substitute, shortest match first
    shortest: int  # no rule of the scope matches a shorter text
    # finds a literal every match of every scanning rule contains (``prefilter.py``):
    # no match, nothing to search for; None when some rule has no such literal
    needs: re.Pattern[str] | None = None
    # the sharp prefilter, once made (a cache: two ScopeRules are never compared)
    _sharp: list[Sharp] = field(default_factory=list)

    @property
    def sharp(self) -> Sharp:
        """The scanning rules indexed by their required literals (``sharp.py``), made on
        first use: most writes never get past ``needs``."""
        if not self._sharp:
            self._sharp.append(Sharp(self.scanning))
        return self._sharp[0]


def split_scope(rules: list[Rule]) -> ScopeRules:
    """``rules`` (those of one scope, in matrix order) split and compiled once."""

    def only(severity: str) -> tuple[Rule, ...]:
        return tuple(r for r in rules if r.severity == severity)

    scanning = tuple(r for r in rules if r.severity != "exclude")
    shortest = min((r.min_len for r in scanning), default=0)
    # By shortest match (a stable sort: block before substitute at equal lengths), so
    # check_identifiers stops at the first rule too long for the value.
    refuse = sorted(only("block") + only("substitute"), key=lambda r: r.min_len)
    return ScopeRules(scanning, only("block"), only("substitute"), only("warn"),
                      tuple(refuse), shortest, any_literal(r.required for r in scanning))  # fmt: skip
