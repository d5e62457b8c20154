"""One scope's rules, compiled once for the write path's fast checks.

A :class:`Matrix` (``matrix.py``) splits its rules per scope at construction: by
severity, the identifier-refusing rules sorted by shortest match, the shortest match
of any rule, one alternation of every pattern (:func:`_any_of`) and a literal
prefilter (``prefilter.py``), so a value no rule can match costs one C-level search.
The alternation is compiled only when a value gets past the prefilter.
"""

from __future__ import annotations

import re

from msgspec import Struct, field

from kei.domain.leaks.prefilter import any_literal
from kei.domain.leaks.rules import Rule

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
    # any_id's one entry, once made (a cache: two ScopeRules are never compared)
    _any: dict[str, re.Pattern[str] | None] = field(default_factory=dict)

    @property
    def any_id(self) -> re.Pattern[str] | None:
        """Matches where any refuse_id or warn rule's pattern does (:func:`_any_of`),
        compiled on first use: most writes never get past ``needs``, and compiling
        the union costs a short command several milliseconds."""
        if "" not in self._any:
            self._any[""] = _any_of([*self.refuse_id, *self.warn])
        return self._any[""]


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


def _any_of(rules: list[Rule]) -> re.Pattern[str] | None:
    """One pattern that finds something wherever any of ``rules`` could match: the
    alternation of their patterns (named groups made plain). Alternation tries every
    branch at every position, so no match of it means no match of any branch; a
    match only sends the value down the exact rule-by-rule path. Group names get the
    rule's number (``(?P<q>``, ``(?P=q)`` and ``(?(q)`` alike), so two rules may use
    one name. None (no shortcut) where the patterns cannot be joined: numbered
    references, inline global flags, or flags other than the ones every rule shares."""
    if not rules or any(r.flags != rules[0].flags for r in rules):
        return None
    parts = []
    for i, r in enumerate(rules):
        text = r.source
        if re.search(_UNJOINABLE, text):
            return None
        parts.append("(?:" + re.sub(_GROUP_NAME, rf"\1r{i}_\2", text) + ")")
    try:
        return re.compile("|".join(parts), rules[0].flags)
    except re.error:
        return None


# As text: compiled (and kept, by ``re``'s cache) when a union is first needed.
_UNJOINABLE = r"\\[1-9]|\\g<|\(\?\([0-9]|\(\?[aiLmsux]+\)"
_GROUP_NAME = r"(\(\?P<|\(\?P=|\(\?\()([A-Za-z_][A-Za-z0-9_]*)(?=[>)])"
