"""The sharp leak prefilter (``kei.domain.leaks.sharp``) must never leave out a rule
that matches.

It tries a rule only when a text holds a literal of every requirement the rule has.
Two things could go wrong, each tested here as a property: the literals it finds in
a text could miss one the text holds (overlapping literals are the hard case), and
over the whole shipped rule set a matching rule could be left out.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kei.adapters.files.leaks import shipped_matrix
from kei.domain.leaks.matrix import Matrix, _maybe
from kei.domain.leaks.prefilter import any_literal
from kei.domain.leaks.rules import Rule, parse_rules
from kei.domain.leaks.sharp import Sharp

LITERALS = st.text(alphabet="ab:-", min_size=1, max_size=4)


def _rules(groups: list[list[str]]) -> tuple[Rule, ...]:
    """One block rule per group, matching exactly one of the group's literals."""
    table = [
        {"id": f"r{i}", "pattern": "|".join(re.escape(lit) for lit in group),
         "category": "secret", "severity": "block", "scope": ["all-writes"],
         "rationale": "test", "added": "2026-12-07"}
        for i, group in enumerate(groups)
    ]  # fmt: skip
    return parse_rules({"rule": table}, "test.toml")


@settings(max_examples=500, deadline=None)
@given(
    groups=st.lists(st.lists(LITERALS, min_size=1, max_size=3), min_size=1, max_size=5),
    text=st.text(alphabet="ab:-x", max_size=24),
)
def test_the_literals_found_are_exactly_those_the_text_holds(
    groups: list[list[str]], text: str
) -> None:
    """Overlapping literals (``a:``, ``:-``, ``a:-a``) are reported or completed: the
    set is exact, so no rule is left out for a literal the scan stepped over."""
    rules = _rules(groups)
    sharp = Sharp(rules)
    needs = any_literal(r.required for r in rules)
    assert needs is not None
    every = {lit for r in rules for lit in r.required or ()}
    assert sharp.present(text, needs.findall(text)) == {lit for lit in every if lit in text}
    matching = {r.id for r in rules if r.matches(text)}
    assert matching <= {r.id for r in _maybe(Matrix(rules)._active["all-writes"], text)}


def _shipped_rules() -> tuple[Rule, ...]:
    return shipped_matrix()._active["all-writes"].scanning


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), noise=st.text(max_size=12))
def test_no_shipped_rule_that_matches_is_left_out(data: st.DataObject, noise: str) -> None:
    """Across the whole shipped rule set: a text made to match one rule (hypothesis'
    own regex strategy), wrapped in noise, gets every rule that matches it tried."""
    rule = data.draw(st.sampled_from(_shipped_rules()))
    made = data.draw(st.from_regex(rule.regex, fullmatch=True))
    text = noise + made + noise[::-1]
    active = shipped_matrix()._active["all-writes"]
    matching = {r.id for r in active.scanning if r.matches(text)}
    assert matching <= {r.id for r in _maybe(active, text)}


def test_a_cost_key_tries_only_the_rules_its_literals_allow() -> None:
    """A Claude Code cost key holds a ``:``: the rules needing a ``:`` and nothing
    rarer are tried (not the whole set), and it is clean."""
    key = "msg_01XyZAbCdEfGhIjKlMnOpQrS:req_011CVabcdEFGHijklMNOPqrs"
    matrix = shipped_matrix()
    tried = {r.id for r in _maybe(matrix._active["all-writes"], key)}
    assert "telegram-bot-token" in tried
    assert "fal-api-key" not in tried  # needs a "-" too
    assert len(tried) < 6
    assert matrix.all_clean([key])


def test_a_rule_without_literals_is_always_tried() -> None:
    rules = _rules([["a:"]]) + parse_rules(
        {"rule": [{"id": "bare", "pattern": r"\w{3}", "category": "secret",
                   "severity": "block", "scope": ["all-writes"], "rationale": "t",
                   "added": "2026-12-07"}]}, "t.toml")  # fmt: skip
    active = Matrix(rules)._active["all-writes"]
    assert active.needs is None
    assert {r.id for r in _maybe(active, "xyz")} == {"bare"}
    assert {r.id for r in _maybe(active, "xa:")} == {"r0", "bare"}
