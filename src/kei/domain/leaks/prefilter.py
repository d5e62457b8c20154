"""Literal prefilters for leak rules: what text must contain before a rule can match.

The write path checks every string against every rule. Python's ``re`` tries a
pattern at every position, and most identifiers contain nothing a rule could start
from. So for every rule we derive, from its parsed pattern, its *requirements*: sets
of literal strings such that **every match of the rule contains at least one literal
of each set** (for ``fal-api-key``: ``:``, and ``-``; for ``aws-access-key-id``:
``AKIA``, ``ASIA``, ...). Two prefilters read them. A scope's first one
(:func:`any_literal`) is one search of an alternation of each rule's rarest
requirement (which ``re`` scans with a first-character table): a text that contains
none of them cannot match any rule. The sharp one (``sharp.py``) then tries only the
rules whose every requirement the text meets.

Soundness is the point: a wrong prefilter would let a secret in. The derivation only
ever *drops* knowledge when in doubt: an opcode it does not know, a case-insensitive
literal (Unicode case folding has surprises such as ``ſ`` matching ``s``), a negated
or category class, an optional repeat, a lookaround or a conditional group give "no
requirement" for that piece, and a rule none of whose pieces has a requirement gets
no prefilter at all (the matrix then always tries it).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Final, Protocol


def _stdlib(name: str) -> Any:
    """The stdlib's regex parser modules: private, so any surprise means "no prefilter"."""
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - a Python without them
        return None


_p: Final[Any] = _stdlib("re._parser")
_c: Final[Any] = _stdlib("re._constants")


class Pattern(Protocol):
    """A compiled pattern, or a rule's uncompiled one (``rules.Shape``)."""

    @property
    def pattern(self) -> str: ...

    @property
    def flags(self) -> int: ...

    def __hash__(self) -> int: ...


Required = frozenset[str]
"""Literal strings at least one of which every match contains."""

MAX_CLASS: Final = 8  # a character class of at most this many characters is a requirement
_IGNORECASE: Final = re.IGNORECASE


Clauses = tuple[Required, ...]
"""Requirements that all hold: every match contains a literal of each (a conjunction of
:data:`Required` disjunctions)."""

Info = tuple["Required | None", Clauses]
"""(exact, clauses): every string the piece can match, when that is a small finite set;
and the requirements every match of it meets."""

LITERAL_COST: Final = 0.001
MAX_EXACT: Final = 64  # the most strings an exact set may hold before it is dropped
MAX_CLAUSES: Final = 4  # the most requirements kept per pattern (the rarest)
COMMON: Final = 0.04  # a requirement more common than this is kept only if it is the rarest
_SPECIAL_FOLDS: Final = "\u0130\u0131\u017f\u212a"  # İ ı ſ K: ASCII letters' other cases


@functools.lru_cache(maxsize=1024)
def parse_tree(pattern: str, flags: int) -> Any:
    """``re``'s own parse of a pattern, kept: a rule's shortest match (``rules.py``) and
    its required literals both read it, and parsing is a third of compiling. Callers
    only read it (``getwidth`` caches the width inside, as ``re`` itself does)."""
    return _p.parse(pattern, flags)


def required_literals(pattern: Pattern) -> Required | None:
    """Literals every match of ``pattern`` contains one of (its rarest requirement), or
    None when unknown."""
    clauses = required_clauses(pattern)
    return min(clauses, key=_commonness) if clauses else None


@functools.lru_cache(maxsize=1024)
def required_clauses(pattern: Pattern) -> Clauses | None:
    """The requirements of ``pattern`` (each a set of literals every match contains
    one of), rarest first, or None when it has none (kept per pattern: every scope a
    rule applies to asks again). Beyond the rarest, at most :data:`MAX_CLAUSES` less
    rare ones, and only those a text seldom meets (a single letter would cost the
    sharp prefilter more to look for than it spares)."""
    if _p is None or _c is None:
        return None
    try:
        parsed = parse_tree(pattern.pattern, pattern.flags)
        icase = bool(parsed.state.flags & _IGNORECASE)
        found = {m for c in _sequence(list(parsed.data), icase)[1] if (m := minimal(c))}
    except Exception:
        return None
    ordered = sorted(found, key=lambda c: (_commonness(c), sorted(c)))
    rare = [c for c in ordered[1:MAX_CLAUSES] if _commonness(c) <= COMMON]
    return tuple(ordered[:1] + rare) or None


def prefilter(patterns: Sequence[Pattern]) -> re.Pattern[str] | None:
    """One pattern that finds a literal of every pattern in ``patterns`` (None when any
    of them has no requirement): no match means none of them can match."""
    return any_literal(required_literals(p) for p in patterns)


def any_literal(needs: Iterable[Required | None]) -> re.Pattern[str] | None:
    """:func:`prefilter` from each pattern's :func:`required_literals`, already derived
    (a rule keeps its own: ``Rule.required``)."""
    found: set[str] = set()
    for need in needs:
        if not need:
            return None
        found |= need
    ordered = sorted(minimal(frozenset(found)) or (), key=lambda s: (-len(s), s))
    if not ordered:  # no pattern at all: nothing to find, and "" would match anywhere
        return None
    return re.compile("|".join(re.escape(s) for s in ordered))


def minimal(need: Required | None) -> Required | None:
    """Drop literals that contain another one: where the longer occurs, so does the
    shorter."""
    if not need:
        return None
    kept: list[str] = []
    for a in sorted(need, key=len):  # only a shorter literal can be inside a longer one
        if not any(b in a for b in kept):  # one dropped has a kept one inside it too
            kept.append(a)
    return frozenset(kept)


def _sequence(items: list[tuple[Any, Any]], icase: bool) -> Info:
    """Every element of a sequence is in every match, so every element's requirements
    hold for the whole; neighbours with exact sets join into longer literals."""
    clauses: list[Required] = []
    current: Required | None = frozenset(("",))
    whole: bool = True
    for op, av in items:
        exact, need = _item(op, av, icase)
        if exact is not None and current is not None and len(current) * len(exact) <= MAX_EXACT:
            current = frozenset(a + b for a in current for b in exact)
            continue
        whole = False
        if current is not None and "" not in current:
            clauses.append(current)
        clauses += need
        current = exact
    if current is not None and "" not in current:
        clauses.append(current)
    return (current if whole else None), tuple(dict.fromkeys(clauses))


def _item(op: Any, av: Any, icase: bool) -> Info:
    if op is _c.LITERAL:
        chars = _folds(chr(av)) if icase else frozenset((chr(av),))
        return chars, (() if chars is None else (chars,))
    if op is _c.SUBPATTERN:
        _group, add, remove, sub = av
        inner = (icase or bool(add & _IGNORECASE)) and not bool(remove & _IGNORECASE)
        return _sequence(list(sub.data), inner)
    if op is _c.ATOMIC_GROUP:
        return _sequence(list(av.data), icase)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, high, sub = av
        exact, need = _sequence(list(sub.data), icase)
        if low == high == 1:
            return exact, need
        return None, (need if low >= 1 else ())
    if op is _c.BRANCH:
        return _branch(av[1], icase)
    if op is _c.IN and not icase:
        chars = _charset(av)
        return chars, (() if chars is None else (chars,))
    if op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT):
        return frozenset(("",)), ()  # zero-width: the text around it is contiguous
    return None, ()  # classes we do not enumerate, references, conditionals...


def _folds(ch: str) -> Required | None:
    """Every character ``ch`` matches case-insensitively, for ASCII letters (Python's
    ``re`` adds exactly four non-ASCII ones for them); None for anything else."""
    if not ch.isascii():
        return None
    candidates = {ch, ch.lower(), ch.upper(), *_SPECIAL_FOLDS}
    return frozenset(c for c in candidates if re.fullmatch(re.escape(ch), c, _IGNORECASE))


def _branch(alternatives: Iterable[Any], icase: bool) -> Info:
    """A match of a branch is a match of one alternative: it contains a literal of that
    alternative's rarest requirement, so of their union (no requirement when one
    alternative has none)."""
    exact: set[str] | None = set()
    need: set[str] | None = set()
    for alternative in alternatives:
        alt_exact, alt_need = _sequence(list(alternative.data), icase)
        if exact is not None and alt_exact is not None:
            exact |= alt_exact
        else:
            exact = None
        if need is not None and alt_need:
            need |= min(alt_need, key=_commonness)
        else:
            need = None  # one branch without a requirement: the whole has none
    if exact is not None and len(exact) > MAX_EXACT:
        exact = None
    return (None if exact is None else frozenset(exact)), (() if not need else (frozenset(need),))


def _charset(items: Sequence[tuple[Any, Any]]) -> Required | None:
    chars: set[str] = set()
    for op, av in items:
        if op is _c.LITERAL:
            chars.add(chr(av))
        elif op is _c.RANGE and av[1] - av[0] < MAX_CLASS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:
            return None  # NEGATE, CATEGORY, wide ranges
        if len(chars) > MAX_CLASS:
            return None
    return frozenset(chars) or None


def _commonness(need: Collection[str]) -> float:
    """How likely an identifier is to contain one of ``need`` (lower is better): a
    rough frequency per character, multiplied along each literal, summed over them,
    plus a little per literal (each is one more branch for the prefilter to try)."""
    total = LITERAL_COST * len(need)
    for literal in need:
        p = 1.0
        for ch in literal:
            p *= _frequency(ch)
        total += p
    return total


def _frequency(ch: str) -> float:
    if ch.isalnum() and ch.isascii():
        return 0.05
    if ch in "-_./":
        return 0.03
    if ch == " ":
        return 0.02
    return 0.005 if ch.isascii() else 0.001
