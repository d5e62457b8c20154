"""The leak matrix (upstream kei-leak-matrix): scan, substitute, and vet an event's fields.

Pure. A :class:`Matrix` holds compiled rules (``rules.py``) and answers three
questions: which rules a text trips (:meth:`Matrix.scan_text`, for ``kei leaks scan``),
what a text becomes once redacted (:meth:`Matrix.substitute`), and, on the write path,
whether an event may be written and with which field values (:meth:`Matrix.check_fields`
for free text; :meth:`Matrix.check_identifiers` for every other string, where a
``substitute`` match refuses like a ``block``: redacting an id would break what refers
to it).
Rules:

- ``exclude`` rules never fire. A rule applies to a scope it lists, or to every scope if
  it lists ``all-writes``.
- A pattern is matched against the whole text, not line by line as upstream does, so a
  match may span lines (a PEM block is found, and redacted, as a whole); ``^`` and ``$``
  still mean the start and end of a line. ``line`` is the 1-based line where a match
  starts. Empty matches never count.
- Nothing here ever shows a pattern or a whole secret: a violation carries at most the
  first 12 characters of its match (never more than half of it) and ``…``; a blocked
  write names the rule and the field only.
- ``check_fields`` runs block rules on the original text of every field first (one hit
  refuses the write, and nothing else is computed), then substitutes, then runs warn
  rules on what will actually be written. A field no rule matches costs one compiled
  ``search`` per rule (each pattern starts with a literal, so ``re`` skips ahead fast).

Example::

    >>> url = "postgres://app:" + "hX9vq2Lr@db/x"  # split: kei's own sources stay clean
    >>> verdict = matrix.check_fields({"summary": "db at " + url})
    >>> verdict.fields["summary"], verdict.redacted_by
    ('db at postgres://app:[REDACTED:database-url-password]@db/x', ('database-url-password',))
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kei.domain.leaks.rules import ALL_WRITES, CATEGORIES, SCOPES, SEVERITIES, Rule, parse_rules
from kei.domain.leaks.scopes import ScopeRules, split_scope
from kei.domain.leaks.verdicts import CLEAN, NO_FIELDS, Blocked, Verdict, Violation, redact_match
from kei.errors import InputError

__all__ = [
    "ALL_WRITES",
    "CATEGORIES",
    "SCOPES",
    "SEVERITIES",
    "Matrix",
    "Rule",
    "check_filters",
]

MEMO_CHARS = 512  # identifiers at most this long are remembered once found clean
MEMO_ENTRIES = 16_384  # then the memo starts over (at most about 8 MB)


class _LazyScopes(Mapping[str, ScopeRules]):
    """The rules of each scope (:func:`split_scope`), made on first use and kept."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self._rules = rules
        self._made: dict[str, ScopeRules] = {}

    def __getitem__(self, scope: str) -> ScopeRules:
        made = self._made.get(scope)
        if made is None:
            if scope not in SCOPES:
                raise KeyError(scope)
            made = split_scope([r for r in self._rules if r.applies_to(scope)])
            self._made[scope] = made
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(SCOPES)

    def __len__(self) -> int:
        return len(SCOPES)


@dataclass(frozen=True, slots=True)
class Matrix:
    """Compiled rules in file order, pre-split per scope and severity at construction."""

    rules: tuple[Rule, ...]
    _active: Mapping[str, ScopeRules] = field(init=False, repr=False, compare=False)
    _clean: dict[str, None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Each scope is split and compiled when first scanned: a write scans one or two
        # of them, and compiling all costs a short command most of its time.
        object.__setattr__(self, "_active", _LazyScopes(self.rules))
        # Identifiers the write path already found clean: a memo of a pure function of
        # this (immutable) matrix, bounded, so repeated agent ids, models and hashes
        # cost one dict lookup instead of a search per rule.
        object.__setattr__(self, "_clean", {})

    def fires(self, scope: str = ALL_WRITES) -> bool:
        """Whether any rule can fire in ``scope``: a scan with none proves nothing."""
        return bool(self._rules(scope).scanning)

    @classmethod
    def from_data(cls, data: Mapping[str, object], *, source: str, compiled: bool = True) -> Matrix:
        """Parse and compile one matrix file's TOML data (``compiled=False``: the shipped
        rules, compiled on first use; see :func:`parse_rules`)."""
        return cls(parse_rules(data, source, compiled=compiled))

    def extend(self, data: Mapping[str, object], *, source: str) -> Matrix:
        """This matrix plus a user file's rules: a new id is appended, a known id is
        replaced whole, in place (so a user can also relax a shipped rule)."""
        extra = {r.id: r for r in parse_rules(data, source)}
        kept = tuple(extra.pop(r.id, r) for r in self.rules)
        return Matrix((*kept, *extra.values()))

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def select(self, category: str | None = None) -> tuple[Rule, ...]:
        if category is not None and category not in CATEGORIES:
            raise InputError(f"unknown category {category!r}; expected one of "
                             f"{', '.join(CATEGORIES)}")  # fmt: skip
        return tuple(r for r in self.rules if category in (None, r.category))

    def lint(self, candidate: str) -> Rule | None:
        """The first rule (any severity, any scope) whose regex matches ``candidate``."""
        return next((r for r in self.rules if r.matches(candidate)), None)

    def scan_text(
        self, text: str, scope: str = ALL_WRITES, label: str = "<text>",
        severity: str | None = None,
    ) -> list[Violation]:  # fmt: skip
        """Every match of every firing rule, ordered by line, then rule, then offset."""
        check_filters(scope, severity)
        rules = self._rules(scope).scanning
        if severity is not None:
            rules = tuple(r for r in rules if r.severity == severity)
        found = [(m.start(), order, m.group(0))
                 for order, rule in enumerate(rules) for m in rule.finditer(text)]  # fmt: skip
        if not found:
            return []
        breaks = _newlines(text)
        rows = sorted((bisect.bisect_left(breaks, start) + 1, order, start, match)
                      for start, order, match in found)  # fmt: skip
        return [Violation(rules[order].id, rules[order].severity, label, line,
                          redact_match(match)) for line, order, _, match in rows]  # fmt: skip

    def substitute(self, text: str, scope: str = ALL_WRITES) -> tuple[str, tuple[str, ...]]:
        """``text`` with every substitute rule applied in matrix order, and the ids of the
        rules that changed it. Block and warn rules are never applied as substitutions."""
        used: list[str] = []
        for rule in self._rules(scope).substitute:
            new, count = rule.sub(text)
            if count and new != text:
                used.append(rule.id)
                text = new
        return text, tuple(used)

    def check_fields(self, fields: Mapping[str, str], scope: str = ALL_WRITES) -> Verdict:
        """The write path's one call per event: block, else redact and flag. Cheap when
        nothing matches: one compiled search per rule per field, no string copied."""
        active = self._rules(scope)
        for name, value in fields.items():
            for rule in active.block:
                if rule.matches(value):
                    return Verdict(Blocked(rule.id, name), NO_FIELDS)
        out = dict(fields)
        redactions: dict[str, tuple[str, ...]] = {}
        warnings: dict[str, tuple[str, ...]] = {}
        for name, value in fields.items():
            if active.substitute:
                new, used = self.substitute(value, scope)
                if used:
                    out[name] = new
                    redactions[name] = used
            flagged = tuple(r.id for r in active.warn if r.matches(out[name]))
            if flagged:
                warnings[name] = flagged
        return Verdict(None, MappingProxyType(out), MappingProxyType(redactions),
                       MappingProxyType(warnings))  # fmt: skip

    def known_clean(self, values: Iterable[object]) -> bool:
        """True when every value is None, or a string too short for any rule or found
        clean before (on ``all-writes``): the write path's fast check, which spares
        most events building field names at all. False means "check them"."""
        memo, shortest = self._clean, self._active[ALL_WRITES].shortest
        for v in values:
            if v is None or (v.__class__ is str and (len(v) < shortest or v in memo)):
                continue
            if v.__class__ is tuple and all(  # tags and other tuples of strings
                i.__class__ is str and (len(i) < shortest or i in memo) for i in v
            ):
                continue
            return False
        return True

    def all_clean(self, strings: Iterable[str]) -> bool:
        """True when no rule of ``all-writes`` matches any of ``strings``: one search
        of the prefilter per string not seen clean before, then, on a hit, only the
        rules whose every required literal the string holds (``sharp.py``). The write
        path's batch check (``leak_guard``); False means "check event by event"."""
        active = self._active[ALL_WRITES]
        memo, shortest = self._clean, active.shortest
        for s in set(strings).difference(memo):  # a batch repeats most of its strings
            if len(s) < shortest:
                continue
            if any(r.matches(s) for r in _maybe(active, s)):
                return False
            _remember_clean(memo, s)
        return True

    def check_identifiers(
        self, values: Iterable[tuple[str, str]], scope: str = ALL_WRITES
    ) -> Verdict:
        """The write path's check of every string that is not free text (ids, names,
        keys, tags, stream names): a ``block`` *or* ``substitute`` match refuses the
        write, because redacting an identifier would change what other events refer
        to; ``warn`` rules flag. ``values`` pairs a field's name with its value."""
        active = self._rules(scope)
        memo = self._clean if scope == ALL_WRITES else {}
        shortest = active.shortest
        todo = [(n, v) for n, v in values if len(v) >= shortest and v not in memo]
        if not todo:
            return CLEAN
        warnings: dict[str, tuple[str, ...]] = {}
        for name, value in todo:
            maybe = _maybe(active, value)
            if not maybe:
                _remember_clean(memo, value)  # no rule can match
                continue
            n, picked = len(value), {id(r) for r in maybe}
            for rule in active.refuse_id:
                if rule.min_len > n:
                    break  # refuse_id is sorted by min_len: no later rule fits either
                if id(rule) in picked and rule.matches(value):
                    return Verdict(Blocked(rule.id, name, rule.severity, identifier=True),
                                   NO_FIELDS)  # fmt: skip
            flagged = tuple(r.id for r in active.warn if id(r) in picked and r.matches(value))
            if flagged:
                warnings[name] = warnings.get(name, ()) + flagged
            else:
                _remember_clean(memo, value)
        return Verdict(None, NO_FIELDS, warnings=MappingProxyType(warnings))

    def _rules(self, scope: str) -> ScopeRules:
        active = self._active.get(scope)
        if active is None:
            check_filters(scope)  # raises: the scope is unknown
            raise AssertionError(scope)
        return active


def _maybe(active: ScopeRules, text: str) -> tuple[Rule, ...]:
    """The rules of ``active`` that can match ``text`` (``sharp.py``): none when the
    scope's prefilter finds no literal in it (one C-level scan, the common case); the
    sharp prefilter is built only when some text first gets past that."""
    if active.needs is None:
        return active.sharp.candidates(text)
    found = active.needs.findall(text)
    return active.sharp.candidates(text, found) if found else ()


def _newlines(text: str) -> list[int]:
    """Offsets of every ``\\n`` in ``text``, ascending."""
    offsets: list[int] = []
    at = text.find("\n")
    while at >= 0:
        offsets.append(at)
        at = text.find("\n", at + 1)
    return offsets


def check_filters(scope: str, severity: str | None = None) -> None:
    """Refuse an unknown scope or severity filter with one line naming the choices."""
    for name, value, allowed in (("scope", scope, SCOPES), ("severity", severity, SEVERITIES)):
        if value is not None and value not in allowed:
            raise InputError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def _remember_clean(memo: dict[str, None], value: str) -> None:
    """Remember a short clean identifier (bounded: the memo is emptied when full)."""
    if len(value) <= MEMO_CHARS:
        if len(memo) >= MEMO_ENTRIES:
            memo.clear()
        memo[value] = None
