"""The budget rules, pure: amounts, scopes, periods, the fold of the ``budgets`` stream and
which thresholds are due. Properties over generated input, pins where the docs give them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.domain.budgets.periods import (
    DAY_US,
    civil_from_days,
    days_from_civil,
    forecast,
    period_window,
)
from kei.domain.budgets.rules import (
    current_budgets,
    decide_clear,
    decide_set,
    due,
    parse_amount,
    reached,
)
from kei.domain.budgets.scopes import parse_scope
from kei.domain.events import BudgetCleared, BudgetSet
from kei.domain.events.budgets import THRESHOLDS
from kei.domain.events.fields import MONEY_MAX, TIME_MAX
from kei.errors import InputError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micro"),
    [("50", 5_000_000_000), ("12.50", 1_250_000_000), ("$0.75", 75_000_000), (".5", 50_000_000),
     ("0.00000001", 1), ("10000000", MONEY_MAX), ("7.", 700_000_000)],
)  # fmt: skip
def test_amounts_in_dollars_are_exact_micro_cents(text: str, micro: int) -> None:
    assert parse_amount(text) == micro


@given(st.integers(1, MONEY_MAX))
def test_every_amount_kei_can_hold_parses_back_exactly(micro: int) -> None:
    text = format(Decimal(micro) / Decimal(100_000_000), "f")
    assert parse_amount(text) == micro


@pytest.mark.parametrize(
    "text",
    ["0", "0.0", "$0", "-5", "+5", "1e3", "1E3", "nan", "NaN", "inf", "-inf", "1,000", "1 000",
     " 5", "5 ", "", "$", ".", "1.123456789", "10000000.00000001", "99999999999999999999",
     "٥", "５", "0x10", "5$", "$$5", "1_000", "1." + "0" * 50],
)  # fmt: skip
def test_bad_amounts_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_amount(text)
    assert "\n" not in str(caught.value)


@given(st.text(max_size=60))
def test_any_text_is_an_exact_amount_or_one_line_refusal(text: str) -> None:
    try:
        micro = parse_amount(text)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert 1 <= micro <= MONEY_MAX
    assert Decimal(text.lstrip("$")) * 100_000_000 == micro


# -- scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["all", "tree:a1", "session:11111111-aaaa", "project:/home/dev/proj", "project:C:\\x"]
)
def test_scopes_round_trip(text: str) -> None:
    assert str(parse_scope(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", "ALL", "All", "everything", "tree", "tree:", "tree: ", "session:\t", "team:x",
     "tree:a\x1b[31m", "session:a\nb", "project:/x\x00y", "tree:" + "a" * 257,
     "project:/" + "p" * 4088, ":a1", "tree :a1", "\u2028all"],
)  # fmt: skip
def test_bad_scopes_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_scope(text)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


@given(st.text(max_size=300))
def test_a_scope_parses_to_itself_or_is_refused(text: str) -> None:
    try:
        scope = parse_scope(text)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert str(scope) == text and scope.kind in ("all", "tree", "session", "project")


# -- periods -----------------------------------------------------------------------------


@given(st.integers(0, TIME_MAX))
def test_periods_are_utc_calendar_days_and_months(at_us: int) -> None:
    moment = EPOCH + timedelta(microseconds=at_us)
    day = period_window("day", at_us)
    assert day.key == moment.strftime("%Y-%m-%d")
    assert day.start_us is not None and day.end_us is not None
    assert day.start_us <= at_us < day.end_us and day.end_us - day.start_us == DAY_US
    month = period_window("month", at_us)
    assert month.key == moment.strftime("%Y-%m")
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    assert month.start_us == (first - EPOCH) // timedelta(microseconds=1)
    assert month.start_us is not None and month.end_us is not None
    assert month.start_us <= at_us < month.end_us
    assert period_window("total", at_us).key == "total"


def test_the_last_month_of_year_9999_ends_at_the_time_limit() -> None:
    assert period_window("month", TIME_MAX).end_us == TIME_MAX + 1
    assert period_window("day", TIME_MAX).end_us == TIME_MAX + 1
    with pytest.raises(InputError):
        period_window("day", TIME_MAX + 1)
    with pytest.raises(InputError):
        period_window("week", 0)


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_civil_days_agree_with_the_calendar(d: date) -> None:
    days = d.toordinal() - date(1970, 1, 1).toordinal()
    assert days_from_civil(d.year, d.month, d.day) == days
    assert civil_from_days(days) == (d.year, d.month, d.day)


def test_the_forecast_is_a_straight_line_and_total_has_none() -> None:
    day = period_window("day", 0)
    assert forecast(day, 100, 100, DAY_US // 4) == 400  # a quarter of the day: x4
    assert forecast(day, 100, 500, DAY_US // 4) == 500  # never below what is spent
    assert forecast(day, 100, 100, 0) is None  # nothing elapsed: nothing to scale
    assert forecast(period_window("total", 5), 10, 10, 5) is None


# -- the fold, set and clear ---------------------------------------------------------------


def test_the_fold_keeps_the_latest_budget_per_scope_and_period() -> None:
    events = [
        (1, BudgetSet(scope="all", period="day", limit_micro_cents=5)),
        (2, BudgetSet(scope="all", period="month", limit_micro_cents=50)),
        (3, BudgetSet(scope="all", period="day", limit_micro_cents=7)),
        (4, BudgetCleared(scope="all", period="month")),
        (5, BudgetSet(scope="team:x", period="day", limit_micro_cents=9)),  # never written
        (6, BudgetSet(scope="tree:a", period="day", limit_micro_cents=0)),  # by kei
    ]
    found = current_budgets(events)
    assert list(found) == [("all", "day")]
    assert found[("all", "day")].version == 3 and found[("all", "day")].name == "budgets:3"


def test_setting_the_budget_in_force_decides_nothing() -> None:
    found = current_budgets([(1, BudgetSet(scope="all", period="day", limit_micro_cents=5))])
    assert decide_set(found, "all", "day", 5) is None
    assert decide_set(found, "all", "day", 6) == BudgetSet(
        scope="all", period="day", limit_micro_cents=6
    )
    assert decide_set(found, "all", "month", 5) is not None
    for bad in (0, -1, MONEY_MAX + 1):
        with pytest.raises(InputError):
            decide_set(found, "all", "day", bad)


def test_clearing_needs_a_budget_and_clears_every_period_by_default() -> None:
    found = current_budgets([
        (1, BudgetSet(scope="all", period="day", limit_micro_cents=5)),
        (2, BudgetSet(scope="all", period="total", limit_micro_cents=5)),
    ])  # fmt: skip
    assert [c.period for c in decide_clear(found, "all", None)] == ["day", "total"]
    assert [c.period for c in decide_clear(found, "all", "total")] == ["total"]
    with pytest.raises(InputError, match="no budget per month on all"):
        decide_clear(found, "all", "month")
    with pytest.raises(InputError, match="no budget on tree:a"):
        decide_clear(found, "tree:a", None)


# -- thresholds --------------------------------------------------------------------------


def test_thresholds_are_reached_at_exactly_their_percent() -> None:
    assert reached(49, 100) == () and reached(50, 100) == (50,)
    assert reached(80, 100) == (50, 80) and reached(100, 100) == THRESHOLDS
    assert reached(1, 3) == () and reached(2, 3) == (50,)  # 66.7 %
    assert reached(-5, 100) == ()


@given(st.integers(-(10**18), 10**18), st.integers(1, MONEY_MAX), st.integers(0, 3))
def test_due_thresholds_continue_the_recorded_ones_in_order(
    spent: int, limit: int, recorded: int
) -> None:
    hit = reached(spent, limit)
    assert hit == THRESHOLDS[: len(hit)]  # a prefix: none skipped
    todo = due(spent, limit, recorded)
    assert todo == THRESHOLDS[recorded : len(hit)]
    for t in todo:
        assert spent * 100 >= t * limit


@given(st.lists(st.integers(0, 10**12), max_size=30), st.integers(1, 10**12))
def test_appending_what_is_due_after_every_cost_records_each_threshold_once(
    costs: list[int], limit: int
) -> None:
    """The writers' loop, sequentially: each cost, then append what is due. The stream
    ends holding exactly the thresholds the final spend reached, each once, in order."""
    stream: list[int] = []
    spent = 0
    for cost in costs:
        spent += cost
        stream += due(spent, limit, len(stream))
    assert stream == list(reached(spent, limit))
