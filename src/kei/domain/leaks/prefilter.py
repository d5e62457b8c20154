"""Literal prefilters for leak rules: what text must contain before a rule can match.

The write path checks every string against the union of all rules (``leaks._any_of``).
Python's ``re`` tries every branch of that union at every position, about 100 ns per
character of each new identifier, and most identifiers contain nothing a rule could
start from. So for every rule we derive, from its parsed pattern, a set of literal
strings such that **every match of the rule contains at least one of them** (for
``generic-secret-assignment``: ``:`` or ``=``; for ``aws-access-key-id``: ``AKIA``,
``ASIA``, ...). A text that contains none of the literals of any rule cannot match any
rule, and one search of an alternation of plain literals (which ``re`` scans with a
first-character table) says so several times faster than the union.

Soundness is the point: a wrong prefilter would let a secret in. The derivation only
ever *drops* knowledge when in doubt: an opcode it does not know, a case-insensitive
literal (Unicode case folding has surprises such as ``ſ`` matching ``s``), a negated
or category class, an optional repeat, a lookaround or a conditional group give "no
requirement" for that piece, and a rule none of whose pieces has a requirement gets
no prefilter at all (the matrix then always runs the full union).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable, Sequence
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


Info = tuple["Required | None", "Required | None"]
"""(exact, need): every string the piece can match, when that is a small finite set;
and literals every match of it contains one of."""

LITERAL_COST: Final = 0.001
MAX_EXACT: Final = 64  # the most strings an exact set may hold before it is dropped
_SPECIAL_FOLDS: Final = "\u0130\u0131\u017f\u212a"  # İ ı ſ K: ASCII letters' other cases


@functools.lru_cache(maxsize=1024)
def parse_tree(pattern: str, flags: int) -> Any:
    """``re``'s own parse of a pattern, kept: a rule's shortest match (``rules.py``) and
    its required literals both read it, and parsing is a third of compiling. Callers
    only read it (``getwidth`` caches the width inside, as ``re`` itself does)."""
    return _p.parse(pattern, flags)


@functools.lru_cache(maxsize=1024)
def required_literals(pattern: Pattern) -> Required | None:
    """Literals every match of ``pattern`` contains one of, or None when unknown (kept
    per pattern: every scope a rule applies to asks again)."""
    if _p is None or _c is None:
        return None
    try:
        parsed = parse_tree(pattern.pattern, pattern.flags)
        icase = bool(parsed.state.flags & _IGNORECASE)
        return _minimal(_sequence(list(parsed.data), icase)[1])
    except Exception:
        return None


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
    ordered = sorted(_minimal(frozenset(found)) or (), key=lambda s: (-len(s), s))
    return re.compile("|".join(re.escape(s) for s in ordered))


def _minimal(need: Required | None) -> Required | None:
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
    """Every element of a sequence is in every match, so any element's requirement
    holds for the whole; neighbours with exact sets join into longer literals."""
    options: list[Required] = []
    current: Required | None = frozenset(("",))
    whole: bool = True
    for op, av in items:
        exact, need = _item(op, av, icase)
        if exact is not None and current is not None and len(current) * len(exact) <= MAX_EXACT:
            current = frozenset(a + b for a in current for b in exact)
            continue
        whole = False
        if current is not None and "" not in current:
            options.append(current)
        if need:
            options.append(need)
        current = exact
    if current is not None and "" not in current:
        options.append(current)
    best = min(options, key=_commonness, default=None)
    return (current if whole else None), best


def _item(op: Any, av: Any, icase: bool) -> Info:
    if op is _c.LITERAL:
        chars = _folds(chr(av)) if icase else frozenset((chr(av),))
        return chars, chars
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
        return None, (need if low >= 1 else None)
    if op is _c.BRANCH:
        return _branch(av[1], icase)
    if op is _c.IN and not icase:
        chars = _charset(av)
        return chars, chars
    if op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT):
        return frozenset(("",)), None  # zero-width: the text around it is contiguous
    return None, None  # classes we do not enumerate, references, conditionals...


def _folds(ch: str) -> Required | None:
    """Every character ``ch`` matches case-insensitively, for ASCII letters (Python's
    ``re`` adds exactly four non-ASCII ones for them); None for anything else."""
    if not ch.isascii():
        return None
    candidates = {ch, ch.lower(), ch.upper(), *_SPECIAL_FOLDS}
    return frozenset(c for c in candidates if re.fullmatch(re.escape(ch), c, _IGNORECASE))


def _branch(alternatives: Iterable[Any], icase: bool) -> Info:
    exact: set[str] | None = set()
    need: set[str] | None = set()
    for alternative in alternatives:
        alt_exact, alt_need = _sequence(list(alternative.data), icase)
        if exact is not None and alt_exact is not None:
            exact |= alt_exact
        else:
            exact = None
        if need is not None and alt_need:
            need |= alt_need
        else:
            need = None  # one branch without a requirement: the whole has none
    if exact is not None and len(exact) > MAX_EXACT:
        exact = None
    return (None if exact is None else frozenset(exact)), (
        None if need is None else frozenset(need)
    )


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


def _commonness(need: Required) -> float:
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
