"""``kei route select`` within a budget: the expensive rung left out, the dearest
affordable model when the fallback is too dear, the budget recorded and re-derived by
``explain``, a refusal when nothing fits, and the rule as a property of ``select``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budgets_helpers import Kei, answer, events
from kei.domain.routing.records import decided_event, differences, input_of, recorded_price
from kei.domain.routing.select import DEFAULT_LADDER, DecisionInput, select
from kei.errors import NoMatchError

pytest_plugins = ["budgets_fixtures"]  # kei_home, kei_env and kei

DNA = "coder::rust-test::3F2A9C01::7B1E44D0-9a0c11fe"
HAIKU, SONNET, OPUS = DEFAULT_LADDER
# The shipped catalog's estimates for select's default 4,000 input and 1,500 output tokens.
COST = {HAIKU: 1_150_000, SONNET: 3_450_000, OPUS: 5_750_000}


def price(model: str, _tokens_in: int, _tokens_out: int) -> int:
    return COST.get(model, 9_000_000)


class Counts:
    """Evidence from ``{(task_class, model): (n⁺, n⁻)}``."""

    def __init__(self, rows: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        self.rows = dict(rows)

    def counts(self, task_class: str, model: str) -> tuple[int, int]:
        return self.rows.get((task_class, model), (0, 0))

    def classes(self, model: str) -> Mapping[str, tuple[int, int]]:
        return {tc: c for (tc, m), c in self.rows.items() if m == model}


TASK = DNA.rsplit("-", 1)[0]


@given(
    st.dictionaries(
        st.tuples(
            st.sampled_from([TASK, "x::y::00000000::00000000"]), st.sampled_from(DEFAULT_LADDER)
        ),
        st.tuples(st.integers(0, 20), st.integers(0, 20)),
    ),
    st.one_of(st.none(), st.integers(0, 7_000_000)),
    st.sampled_from([DNA, ""]),
    st.sampled_from([OPUS, "gpt-off-ladder"]),
)
def test_a_choice_never_costs_more_than_the_budget_and_re_derives(
    rows: dict[tuple[str, str], tuple[int, int]], budget: int | None, dna: str, fallback: str
) -> None:
    inp = DecisionInput(dna=dna, budget_micro_cents=budget, fallback=fallback)
    try:
        d = select(inp, Counts(rows), price)
    except NoMatchError:
        assert budget is not None and budget < min(COST.values())
        return
    if budget is not None:
        assert d.expected_cost_micro_cents <= budget
        assert all(c.over_budget == (c.expected_cost_micro_cents > budget) for c in d.candidates)
        assert not any(c.feasible and c.over_budget for c in d.candidates)
    else:
        assert d.reason != "budget_capped"
    if d.reason == "budget_capped":
        within = [m for m in DEFAULT_LADDER if COST[m] <= (budget or 0)]
        assert d.model == within[-1]  # the dearest (most capable) model there is money for
    event = decided_event("d1", inp, d)
    again = select(input_of(event), Counts(rows), recorded_price(event))
    assert differences(event, again) == []


def test_the_budget_leaves_the_expensive_rung_out() -> None:
    trusted = {(TASK, OPUS): (6, 0)}  # only opus is trusted for this class
    assert select(DecisionInput(DNA), Counts(trusted), price).model == OPUS
    capped = select(DecisionInput(DNA, budget_micro_cents=4_000_000), Counts(trusted), price)
    assert (capped.model, capped.reason) == (SONNET, "budget_capped")
    assert [c.over_budget for c in capped.candidates] == [False, False, True]
    both = {(TASK, SONNET): (6, 0), (TASK, OPUS): (6, 0)}
    cheap = select(DecisionInput(DNA, budget_micro_cents=3_000_000), Counts(both), price)
    assert (cheap.model, cheap.reason) == (HAIKU, "budget_capped")
    pinned = select(DecisionInput(DNA, pinned=OPUS, budget_micro_cents=1), Counts({}), price)
    assert pinned.model == OPUS  # a pin is not second-guessed
    with pytest.raises(NoMatchError, match="no model fits the budget: 1000000 µ¢"):
        select(DecisionInput(DNA, budget_micro_cents=1_000_000), Counts({}), price)


# -- end to end ------------------------------------------------------------------------------


def routed(kei: Kei, *args: str) -> dict[str, Any]:
    return answer(kei("route", "select", "--dna", DNA, "--json", *args))


def test_route_select_with_a_budget_scope(kei: Kei, store_url: str) -> None:
    for _ in range(6):  # opus does this class well; nothing else has evidence
        pick = routed(kei, "--pin", "opus")["decision_id"]
        kei("route", "outcome", pick, "--outcome", "functional")
    assert routed(kei)["model"] == OPUS
    kei("budget", "set", "all", "0.05", "--period", "day")
    kei("cost", "record", "kid", "--provider", "p", "--model", "m", "--cents", "1")
    chosen = routed(kei, "--budget", "all")  # $0.04 left: opus ($0.0575) is out
    assert (chosen["model"], chosen["reason"]) == (SONNET, "budget_capped")
    assert chosen["budget_micro_cents"] == 4_000_000 and chosen["budget_scope"] == "all"
    assert chosen["budget_usd"] == "0.04"
    assert [c["over_budget"] for c in chosen["candidates"]] == [False, False, True]
    explained = kei("route", "explain", chosen["decision_id"])
    assert "re-derived from the log: identical" in explained.stdout
    assert "budget: 4000000 µ¢ per call (left of all)" in explained.stdout
    text = kei("route", "select", "--dna", DNA, "--budget-micro", "2000000").stdout
    assert "model: claude-haiku-4-5" in text and "budget: $0.0200 (microcents=2000000)" in text
    before = len(events(store_url))
    refused = kei("route", "select", "--dna", DNA, "--budget-micro", "1000", code=2)
    assert refused.stderr.startswith("kei: error: no model fits the budget: 1000 µ¢")
    kei("cost", "record", "kid", "--provider", "p", "--model", "m", "--cents", "10")
    spent = kei("route", "select", "--dna", DNA, "--budget", "all", code=2)  # over: 0 left
    assert "no model fits the budget: 0 µ¢" in spent.stderr
    appended = [e.type for e in events(store_url)[before:]]
    assert appended == ["cost.recorded"] + ["budget.threshold.crossed"] * 3  # no decision


def test_old_decisions_without_a_budget_still_explain(kei: Kei) -> None:
    decision = routed(kei)
    assert decision["budget_micro_cents"] is None and decision["budget_scope"] is None
    shown = kei("route", "explain", decision["decision_id"], "--json")
    assert json.loads(shown.stdout)["rederived"] is True
    assert "over_budget" not in kei("route", "explain", decision["decision_id"]).stdout
