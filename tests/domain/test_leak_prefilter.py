"""The literal prefilter of the leak matrix must never hide a match.

``kei.domain.leaks.prefilter`` derives, per rule, literals every match contains; the
write path skips the full search when a string holds none of them. A wrong literal
would let a secret into the signed log, so the property tested here is soundness:
whenever a pattern matches a text, its prefilter finds something in that text.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kei.adapters.files.leaks import shipped_matrix
from kei.domain.leaks.prefilter import prefilter, required_clauses, required_literals

ALPHABET = "ab:-=Ssk_ \u017f\u212aK"


def _atom() -> st.SearchStrategy[str]:
    literal = st.sampled_from(["a", "b", ":", "-", "=", "s", "k", "sk-", "ab", r"\:"])
    cls = st.sampled_from(["[ab]", "[:=]", "[a-c]", "[^a]", r"\w", r"\s", ".", "[sk]"])
    return st.one_of(literal, cls)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
        st.tuples(inner, st.sampled_from(["?", "*", "+", "{2}", "{1,3}", "++", "{0,2}"])).map(
            lambda p: f"(?:{p[0]}){p[1]}"
        ),
        inner.map(lambda p: f"(?i:{p})"),
        inner.map(lambda p: f"(?-i:{p})"),
        inner.map(lambda p: f"({p})"),
        inner.map(lambda p: f"(?>{p})"),
        st.tuples(inner, inner).map(lambda p: f"{p[0]}(?<!x){p[1]}"),
        st.tuples(inner, inner).map(lambda p: f"{p[0]}(?={p[1]})"),
        st.tuples(inner, inner).map(lambda p: rf"{p[0]}\b{p[1]}"),
    )


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


PATTERNS = st.recursive(_atom(), _extend, max_leaves=10).filter(_compiles)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=PATTERNS, texts=st.lists(st.text(alphabet=ALPHABET, max_size=12), max_size=8))
def test_a_match_always_passes_the_prefilter(pattern: str, texts: list[str]) -> None:
    """Every requirement (not only the rarest, which the first prefilter reads) holds
    for every match: the sharp prefilter reads them all."""
    compiled = re.compile(pattern)
    clauses = required_clauses(compiled) or ()
    assert required_literals(compiled) == (clauses[0] if clauses else None)
    for text in texts:
        if compiled.search(text):
            for need in clauses:
                assert any(lit in text for lit in need), (pattern, text, need)


@settings(max_examples=200)
@given(pattern=PATTERNS, data=st.data())
def test_generated_matches_pass_the_prefilter(pattern: str, data: st.DataObject) -> None:
    """Texts made to match (hypothesis' own regex strategy) contain a literal."""
    compiled = re.compile(pattern)
    need = required_literals(compiled)
    try:
        text = data.draw(st.from_regex(compiled))
    except Exception:  # a construct hypothesis cannot generate from
        return
    if need is not None and compiled.search(text):
        assert any(lit in text for lit in need), (pattern, text, need)
    if compiled.search(text):
        for clause in required_clauses(compiled) or ():
            assert any(lit in text for lit in clause), (pattern, text, clause)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("(?i:secret)=", "\u017fECRET="),  # long s folds to s
        ("(?i)key:", "\u212aEY:"),  # Kelvin sign folds to k
        ("sk-[a-z]+", "xsk-abc"),
        ("(?:AKIA|ASIA)[A-Z0-9]{4}", "ASIAABCD"),
    ],
)
def test_case_folds_and_branches(pattern: str, text: str) -> None:
    compiled = re.compile(pattern)
    assert compiled.search(text)
    found = prefilter([compiled])
    assert found is not None and found.search(text)


@pytest.mark.parametrize("pattern", [r"\w+", "a?", "(?:a|)", ".", "[^:]+", r"\d"])
def test_no_requirement_means_no_prefilter(pattern: str) -> None:
    assert required_literals(re.compile(pattern)) is None
    assert prefilter([re.compile("sk-"), re.compile(pattern)]) is None


def test_every_shipped_rule_has_a_prefilter() -> None:
    """The shipped rules keep their literal leads (``data/leaks.toml``): a rule
    without one would silently turn the shortcut off for every write."""
    matrix = shipped_matrix()
    missing = [r.id for r in matrix.rules if required_literals(r.regex) is None]
    assert missing == []


@settings(max_examples=300)
@given(text=st.text(max_size=80))
def test_shipped_matrix_verdict_is_unchanged_by_the_prefilter(text: str) -> None:
    """Rule by rule and through the matrix's shortcut, the same answer."""
    matrix = shipped_matrix()
    any_rule = any(r.regex.search(text) for r in matrix.rules if r.severity != "exclude")
    needs = prefilter([r.regex for r in matrix.rules if r.severity != "exclude"])
    assert needs is not None
    if any_rule:
        assert needs.search(text)
