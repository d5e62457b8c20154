"""Leak-matrix rules (upstream kei-leak-matrix): parse, validate and compile one ``[[rule]]``.

Pure: it takes TOML data already read into dicts (``adapters/files/leaks.py`` reads the
files) and a ``source`` label used only in error messages. Rules:

- Every field is checked; an unknown key, a wrong type, an unknown enum value or a bad
  regex is one :class:`LeakMatrixError` line naming the source, the rule id and the field.
  The message never quotes the pattern: it may hold a fragment of a real secret.
- Every regex is compiled once, at load, with ``re.MULTILINE`` (the shipped rules,
  which kei's tests compile and check, on first use instead: ``compiled=False``) (``^``/``$`` mean the start
  and end of a line, as in upstream's line-by-line scan). kei compiles with Python's
  ``re``; Rust's ``(?<name>...)`` is accepted, other Rust-only syntax (``\\p{L}``,
  ``[[:alpha:]]``, mid-pattern flags) is refused. A pattern that matches the empty
  string is refused: it would fire on every text.
- ``substitute_with`` uses Rust's replacement syntax (``$1``, ``$name``, ``${name}``,
  ``$$``); it is translated into a Python template once, and every group it names must
  exist. A substitute rule without one redacts with ``[REDACTED:<id>]``: upstream lets
  such a match through unchanged, kei never does.
- ``min_entropy`` (a kei extension, optional) is a floor in Shannon bits per character
  on the group named ``secret`` (or the whole match): a generic ``token=...`` rule fires
  only on values that look random.

Example::

    >>> rule, = parse_rules({"rule": [{"id": "demo", "pattern": "(pw=)\\\\S+",
    ...     "category": "secret", "severity": "substitute", "substitute_with": "${1}***",
    ...     "scope": ["all-writes"], "rationale": "demo", "added": "2026-11-25"}]}, "x.toml")
    >>> rule.sub("login pw=hunter2")
    ('login pw=***', 1)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping

from msgspec import Struct, field

from kei.domain.leaks.patterns import (
    compile_pattern,
    pattern_flags,
    python_pattern,
    translate_replacement,
)
from kei.domain.leaks.prefilter import parse_tree, required_clauses, required_literals
from kei.domain.values.dates import iso_date
from kei.errors import LeakMatrixError
from kei.limits import LIMITS

__all__ = [
    "ALL_WRITES",
    "CATEGORIES",
    "SCOPES",
    "SEVERITIES",
    "Rule",
    "RuleData",
    "parse_rules",
    "pattern_where",
    "shannon_entropy",
]

CATEGORIES = ("patent-ip", "secret", "personal", "internal-infra", "private-project")
SEVERITIES = ("block", "warn", "substitute", "exclude")
SCOPES = ("all-writes", "public-mirror", "github-push", "commit-msg")
ALL_WRITES = "all-writes"
_RULE_KEYS = {"id", "pattern", "category", "severity", "substitute_with", "scope",
              "rationale", "added", "min_entropy", "needles"}  # fmt: skip
# Patterns as text, compiled (and kept, by ``re``'s own cache) on the first parse: the
# shipped rules load from their derived table without them.
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}"
_SHOWN = 60


class Shape(Struct, frozen=True):
    """A pattern's text and the flags it is compiled with: what the prefilter reads,
    without compiling it."""

    pattern: str
    flags: int


class RuleData(Struct, frozen=True):
    """What a rule derives to from its ``[[rule]]`` table: every field but the ones
    :class:`Rule` adds for use. The shipped table (``leaks.derived.json``) holds these."""

    id: str
    category: str
    severity: str
    scope: tuple[str, ...]
    rationale: str
    added: str
    source: str  # the pattern in Python's syntax
    substitute_with: str | None = None
    replacement: str = ""  # Python template; "" for non-substitute
    min_entropy: float | None = None
    needles: tuple[str, ...] = ()  # lower-case; a match holds one of them (kei's addition)
    min_len: int = 0  # no match is shorter (from the pattern)
    flags: int = 0  # the compiled pattern's flags
    # literals every match contains one of (``prefilter.required_literals``); None: unknown
    required: frozenset[str] | None = None
    # every requirement: a literal of each is in every match (``required_clauses``)
    clauses: tuple[frozenset[str], ...] | None = None


_SHOWN_FIELDS = ("id", "category", "severity", "scope", "rationale", "added",
                 "substitute_with", "min_entropy", "needles")  # fmt: skip


class Rule(RuleData, frozen=True):
    """One rule. Its pattern (and what derives from it) is hidden from ``repr``: patterns
    stay out of logs. ``regex`` is compiled at load, or (a shipped rule) on first use.
    Equality and hashing leave out ``where`` and the compiled pattern, as a value's
    identity does not depend on where it was loaded or whether it was used yet."""

    where: str = ""  # for a late compile's error
    _compiled: list[re.Pattern[str]] = field(default_factory=list)

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in RuleData.__struct_fields__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Rule({', '.join(f'{k}={v!r}' for k, v in self.__rich_repr__())})"

    def __rich_repr__(self) -> list[tuple[str, object]]:
        return [(name, getattr(self, name)) for name in _SHOWN_FIELDS]

    @property
    def regex(self) -> re.Pattern[str]:
        if not self._compiled:
            self._compiled.append(compile_pattern(self.source, self.where))
        return self._compiled[0]

    def could_match(self, text: str) -> bool:
        """False only when no match is possible: the text is shorter than the shortest
        match the pattern allows, or none of the rule's ``needles`` is in the
        lower-cased text. Cheap checks that spare the patterns on the write path's
        short identifiers and ordinary text (the generic assignment rule tries a
        lookbehind at every k, t, s, p and c)."""
        if len(text) < self.min_len:
            return False
        if not self.needles:
            return True
        low = text.lower()
        return any(n in low for n in self.needles)

    def applies_to(self, scope: str) -> bool:
        """Upstream's scope rule: the scope is listed, or the rule covers ``all-writes``."""
        return scope in self.scope or ALL_WRITES in self.scope

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Every non-empty match in ``text`` that clears ``min_entropy``."""
        if not self.could_match(text):
            return
        for m in self.regex.finditer(text):
            if m.end() > m.start() and self._random_enough(m):
                yield m

    def matches(self, text: str) -> bool:
        # One C-level search answers the common case (no match) without a generator.
        if not self.could_match(text):
            return False
        first = self.regex.search(text)
        if first is None:
            return False
        if first.end() > first.start() and self._random_enough(first):
            return True
        return next(self.finditer(text), None) is not None

    def sub(self, text: str) -> tuple[str, int]:
        """``text`` with every match :meth:`finditer` yields replaced by the translated
        ``substitute_with``; the count includes matches left as they were."""
        if not self.could_match(text):
            return text, 0
        return self.regex.subn(self._replace, text)

    def _replace(self, m: re.Match[str]) -> str:
        if m.end() > m.start() and self._random_enough(m):
            return m.expand(self.replacement)
        return m.group(0)

    def _random_enough(self, m: re.Match[str]) -> bool:
        if self.min_entropy is None:
            return True
        value = m.group("secret") if "secret" in self.regex.groupindex else m.group(0)
        return value is not None and shannon_entropy(value) >= self.min_entropy


def shannon_entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character (0.0 for the empty string)."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def parse_rules(
    data: Mapping[str, object], source: str, *, compiled: bool = True
) -> tuple[Rule, ...]:
    """Every ``[[rule]]`` of one matrix file, validated and compiled, in file order.

    ``compiled=False`` (the shipped rules only) leaves a pattern that re's parser
    accepts, that cannot match the empty string and that no substitution reads to be
    compiled on first use: a write whose strings hold no rule's literal never
    compiles it (a short command saves most of the matrix's load time)."""
    extra = sorted(set(data) - {"rule"})
    if extra:
        raise LeakMatrixError(f"{source}: unknown top-level key {extra[0]!r}; expected [[rule]]")
    raw = data.get("rule", [])
    if not isinstance(raw, list) or len(raw) > LIMITS.max_leak_rules:
        raise LeakMatrixError(
            f"{source}: 'rule' must be a list of at most {LIMITS.max_leak_rules} tables"
        )
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw, 1):
        rule = _parse_rule(entry, index, source, compiled)
        if rule.id in seen:
            raise LeakMatrixError(f"{source}: rule {rule.id!r} field 'id': defined twice")
        seen.add(rule.id)
        rules.append(rule)
    return tuple(rules)


def _parse_rule(entry: object, index: int, source: str, compiled: bool) -> Rule:
    if not isinstance(entry, dict):
        raise LeakMatrixError(f"{source}: [[rule]] number {index} must be a table")
    rid = entry.get("id")
    if not isinstance(rid, str) or not re.fullmatch(_ID, rid):
        raise LeakMatrixError(f"{source}: [[rule]] number {index} field 'id': expected 1-80 of "
                              f"A-Z a-z 0-9 . _ - (starting alphanumeric), found {_quote(rid)}")  # fmt: skip
    where = f"{source}: rule {rid!r} field"
    extra = sorted(set(entry) - _RULE_KEYS)
    if extra:
        raise LeakMatrixError(f"{where} {extra[0]!r}: unknown field")
    for req in ("pattern", "category", "severity", "scope", "rationale", "added"):
        if req not in entry:
            raise LeakMatrixError(f"{where} {req!r}: missing")
    severity = _choice(entry["severity"], SEVERITIES, f"{where} 'severity'")
    at = pattern_where(source, rid)
    python = python_pattern(entry["pattern"], at)
    flags = pattern_flags(python, at)
    shape = Shape(python, re.MULTILINE)
    low = min_width(shape)
    late = not compiled and severity != "substitute" and low > 0
    regex = None if late else compile_pattern(entry["pattern"], at)
    sub_with = entry.get("substitute_with")
    if sub_with is not None:
        _text(sub_with, f"{where} 'substitute_with'", empty=True)
    template = ""
    if severity == "substitute":
        rust = sub_with if isinstance(sub_with, str) and sub_with else f"[REDACTED:{rid}]"
        assert regex is not None  # a substitute rule is compiled at load
        template = translate_replacement(rust, regex, f"{where} 'substitute_with'")
    return Rule(
        id=rid,
        category=_choice(entry["category"], CATEGORIES, f"{where} 'category'"),
        severity=severity,
        scope=_scopes(entry["scope"], f"{where} 'scope'"),
        rationale=_text(entry["rationale"], f"{where} 'rationale'"),
        added=_date(entry["added"], f"{where} 'added'"),
        source=python,
        substitute_with=sub_with if isinstance(sub_with, str) else None,
        replacement=template,
        min_entropy=_entropy(entry.get("min_entropy"), f"{where} 'min_entropy'"),
        needles=_needles(entry.get("needles"), f"{where} 'needles'"),
        min_len=low,
        flags=regex.flags if regex is not None else flags,
        required=required_literals(shape),
        clauses=required_clauses(shape),
        where=at,
        _compiled=[] if regex is None else [regex],
    )


def pattern_where(source: str, rule_id: str) -> str:
    """How an error names a rule's pattern (a late compile's error too)."""
    return f"{source}: rule {rule_id!r} field 'pattern'"


def min_width(shape: Shape) -> int:
    """The length of the shortest text the pattern can match, from ``re``'s own parser
    (0 if it cannot tell): a shorter text is never searched."""
    try:
        low = parse_tree(shape.pattern, shape.flags).getwidth()[0]  # re's own parser
    except Exception:  # a parser change only costs speed, never a match
        return 0
    return int(low) if isinstance(low, int) and 0 <= low < 1 << 20 else 0


def _scopes(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise LeakMatrixError(f"{where}: expected a non-empty list of {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(_choice(v, SCOPES, where) for v in value))


def _choice(value: object, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise LeakMatrixError(
            f"{where}: expected one of {', '.join(allowed)}, found {_quote(value)}"
        )
    return value


def _text(value: object, where: str, *, empty: bool = False) -> str:
    if (
        not isinstance(value, str)
        or (not value and not empty)
        or len(value) > LIMITS.max_leak_text_chars
    ):
        raise LeakMatrixError(f"{where}: expected a {'' if empty else 'non-empty '}string "
                              f"of at most {LIMITS.max_leak_text_chars} chars")  # fmt: skip
    return value


def _date(value: object, where: str) -> str:
    when = iso_date(value)
    if when is None:
        raise LeakMatrixError(f"{where}: expected a date YYYY-MM-DD, found {_quote(value)}")
    return when


def _entropy(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 8:
        raise LeakMatrixError(f"{where}: expected a number of bits per char from 0 to 8")
    return float(value)


def _needles(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise LeakMatrixError(f"{where}: expected a list of non-empty strings")
    return tuple(v.lower() for v in value)


def _quote(value: object) -> str:
    """Quote an untrusted value on one bounded line."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
