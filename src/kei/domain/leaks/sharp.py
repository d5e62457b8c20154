"""The sharp prefilter: which rules can match a text, from all the literals each requires.

The literal prefilter of a scope (``prefilter.any_literal``) asks one question: does the
text hold *any* literal of *any* rule? A Claude Code cost key such as
``msg_01…:req_01…`` does (``:`` is a literal of the Telegram and generic-assignment
rules), and used to send every such key through the union of every pattern, about
10 µs each. A rule, though, requires several literals at once (``prefilter.
required_clauses``: for ``fal-api-key`` a ``-`` *and* a ``:``; for
``generic-secret-assignment`` a ``:`` or ``=`` *and* one of its spellings of "ass" or
"ey"), so :class:`Sharp` finds which literals of each rule's rarest requirement a
text holds, and keeps only the rules whose rarest requirement is met and whose other
requirements (at most a few literals each) are found with ``in``.

Finding the literals: the scope's prefilter (``ScopeRules.needs``, the alternation of
those literals, minus any that holds a shorter one, longest first) runs as a
``findall``, so a text that holds none costs one C-level scan, as before. At each
position the scan reports the longest literal starting there and resumes after it,
so a kept literal it does not report starts inside a reported one and ends after it
(those few, per literal, are looked for with ``in``), and a literal that was left out
holds a kept one (looked for with ``in`` once that one is found). So the set is
exact, and a rule left out cannot match: ``tests/domain/test_leak_sharp.py`` checks
that over the whole shipped rule set. A rule without requirements is always tried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from kei.domain.leaks.prefilter import any_literal, minimal
from kei.domain.leaks.rules import Rule

__all__ = ["Sharp"]


class Sharp:
    """The rules of one scope, indexed by the literals of their rarest requirement
    (see the module)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        full = {lit for r in self.rules for lit in r.required or ()}
        kept = minimal(frozenset(full)) or frozenset()
        # the scope's prefilter when every rule has a requirement (``re`` caches it)
        self._finder = any_literal([r.required for r in self.rules if r.required] or [None])
        # a kept literal found: the kept ones that may straddle it, and the literals
        # holding it (present only if ``in`` finds them; itself always is)
        self._straddling = {a: tuple(b for b in kept if _straddles(a, b)) for a in kept}
        self._holding = {a: _holders(a, full) for a in kept}
        self._always = tuple(r for r in self.rules if not r.required)
        touched: dict[str, list[int]] = {}
        for i, r in enumerate(self.rules):
            for lit in r.required or ():
                touched.setdefault(lit, []).append(i)
        self._touched = {lit: tuple(found) for lit, found in touched.items()}
        # beyond the rarest requirement, the ones a candidate must also meet (each as
        # one search of its literals)
        self._rest = tuple(_searches(r) for r in self.rules)

    def present(self, text: str, reported: Iterable[str] | None = None) -> set[str]:
        """Every literal of every rule's rarest requirement that ``text`` holds, given
        what the scope's prefilter (``ScopeRules.needs``) ``findall`` reported (None:
        run it here)."""
        if reported is None:
            reported = () if self._finder is None else self._finder.findall(text)
        kept: set[str] = set()
        for lit in set(reported):
            kept.add(lit)
            kept.update(b for b in self._straddling[lit] if b not in kept and b in text)
        found = set(kept)
        for lit in kept:
            for b, inner in self._holding[lit]:  # shortest first: ``inner`` are decided
                if (not inner or found.issuperset(inner)) and b in text:
                    found.add(b)
        return found

    def candidates(self, text: str, reported: Iterable[str] | None = None) -> tuple[Rule, ...]:
        """The rules (in their order) that can match ``text``: it meets every
        requirement of each, or the rule has none. A rule not returned cannot match."""
        found = self.present(text, reported)
        maybe = self._touched[found.pop()] if len(found) == 1 else self._union(found)
        rest, met = self._rest, []
        for i in maybe:
            if rest[i] and not all(search(text) for search in rest[i]):
                continue
            met.append(i)
        if not self._always:
            return tuple(self.rules[i] for i in sorted(met))
        return tuple(r for i, r in enumerate(self.rules) if i in met or not r.required)

    def _union(self, found: set[str]) -> set[int]:
        maybe: set[int] = set()
        for lit in found:
            maybe.update(self._touched[lit])
        return maybe


def _searches(rule: Rule) -> tuple[Callable[[str], object], ...]:
    """The ``search`` of each requirement of ``rule`` but its rarest."""
    found = []
    for clause in rule.clauses or ():
        pattern = any_literal([clause]) if clause != rule.required else None
        if pattern is not None:
            found.append(pattern.search)
    return tuple(found)


def _holders(a: str, full: set[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    """The literals of ``full`` holding ``a``, shortest first, each with the shorter
    ones it holds: where one of those is absent, so is it (no need to look)."""
    holding = sorted((b for b in full if a in b and a != b), key=lambda b: (len(b), b))
    return tuple((b, frozenset(c for c in holding[:i] if c in b)) for i, b in enumerate(holding))


def _straddles(a: str, b: str) -> bool:
    """Whether ``b`` can start inside ``a`` (not at its start) and end after it: a
    proper, non-empty suffix of ``a`` is a proper prefix of ``b``."""
    return any(b.startswith(a[k:]) and len(b) > len(a) - k for k in range(1, len(a)))
