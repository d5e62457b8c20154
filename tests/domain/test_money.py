"""Money: integer micro-cents, upstream's ledger and catalog formulas, display rounding."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.domain.agents.money import (
    MICRO_CENTS_PER_CENT,
    MICRO_CENTS_PER_DOLLAR,
    compose_micro_cents,
    display_cents,
    format_cents_exact,
    format_usd,
    price_micro_cents,
)
from kei.errors import InputError

U64_MAX = 2**64 - 1


def test_units() -> None:
    assert MICRO_CENTS_PER_CENT == 1_000_000
    assert MICRO_CENTS_PER_DOLLAR == 100_000_000


# -- pinned upstream values (spec §11) --------------------------------------------------


@pytest.mark.parametrize(
    ("micro", "cents"),
    [
        pytest.param(0, 0, id="zero"),
        pytest.param(499_999, 0, id="just-below-half-rounds-down"),
        pytest.param(500_000, 1, id="half-rounds-up"),
        pytest.param(1_500_000, 2, id="one-and-a-half-rounds-up-not-to-even"),
        pytest.param(2_500_000, 3, id="two-and-a-half-rounds-up-not-to-even"),
        pytest.param(1_000_000, 1, id="whole-cent"),
        pytest.param(500, 0, id="hundred-micro-turns"),
        pytest.param(-499_999, 0, id="negative-just-below-half"),
        pytest.param(-500_000, 0, id="negative-half-towards-plus-infinity"),
        pytest.param(-500_001, -1, id="negative-past-half"),
        pytest.param(-1_500_000, -1, id="negative-one-and-a-half"),
        pytest.param(U64_MAX, 18_446_744_073_710, id="u64-max-no-saturation"),
    ],
)
def test_display_cents_rounds_half_up(micro: int, cents: int) -> None:
    assert display_cents(micro) == cents


def test_compose_pinned_by_upstream() -> None:
    assert compose_micro_cents(1_500_000, 500_000, 100, 500) == 400_000_000


def test_compose_micro_turns_lose_nothing() -> None:
    """Upstream v7-T11: 100 calls of 5 tokens at 1 ¢/MTok sum to 500 µ¢, shown as 0 ¢."""
    total = sum(compose_micro_cents(5, 0, 1, 0) for _ in range(100))
    assert total == 500
    assert display_cents(total) == 0


def test_compose_does_not_saturate_at_u64() -> None:
    """Upstream clamps to u64 max; Python ints are exact, so kei gives the true value."""
    assert compose_micro_cents(U64_MAX, U64_MAX, 2**32 - 1, 2**32 - 1) == 2 * U64_MAX * (2**32 - 1)
    assert compose_micro_cents(U64_MAX, 0, 2, 0) > U64_MAX


@pytest.mark.parametrize(
    ("args", "micro"),
    [
        pytest.param((100_000, 200_000, 1000, 2000), 500, id="upstream-estimate-test"),
        pytest.param((1_000_000, 0, 1, 0), 1, id="one-micro-per-mtok-one-mtok"),
        pytest.param((999_999, 0, 1, 0), 0, id="floored-not-rounded"),
        pytest.param((500_000, 500_000, 1, 1), 0, id="each-term-floored-separately"),
        pytest.param((1, 1, 999_999, 999_999), 0, id="sub-micro-remainders-do-not-carry"),
        pytest.param(
            (1_500_000, 500_000, 100_000_000, 500_000_000), 400_000_000, id="same-as-compose"
        ),
        pytest.param((0, 0, 5, 5), 0, id="no-tokens"),
        pytest.param(
            (U64_MAX, 0, U64_MAX, 0), U64_MAX * U64_MAX // 1_000_000, id="beyond-u64-exact"
        ),
    ],
)
def test_price_floors_each_term(args: tuple[int, int, int, int], micro: int) -> None:
    assert price_micro_cents(*args) == micro


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        pytest.param(400_000_000, "$4.00", id="four-dollars"),
        pytest.param(0, "$0.00", id="zero"),
        pytest.param(499_999, "$0.00", id="below-half-cent"),
        pytest.param(500_000, "$0.01", id="half-cent-up"),
        pytest.param(99_499_999, "$0.99", id="just-below-a-dollar"),
        pytest.param(99_500_000, "$1.00", id="rounds-into-a-dollar"),
        pytest.param(123_456_789_000_000, "$1234567.89", id="no-thousands-separators"),
        pytest.param(-500_000, "$0.00", id="negative-half-is-zero-not-minus-zero"),
        pytest.param(-1_500_000, "-$0.01", id="negative-cent"),
        pytest.param(-100_000_000, "-$1.00", id="negative-dollar"),
    ],
)
def test_format_usd(micro: int, text: str) -> None:
    assert format_usd(micro) == text


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        pytest.param(1_500_000, "1.500000", id="cent-and-a-half"),
        pytest.param(5, "0.000005", id="five-micro"),
        pytest.param(0, "0.000000", id="zero"),
        pytest.param(-5, "-0.000005", id="negative"),
        pytest.param(U64_MAX, "18446744073709.551615", id="u64-max-exact-unlike-a-float"),
    ],
)
def test_format_cents_exact(micro: int, text: str) -> None:
    assert format_cents_exact(micro) == text


# -- refused inputs ---------------------------------------------------------------------

_GOOD = (1, 1, 1, 1)
_FUNCS = {"compose": compose_micro_cents, "price": price_micro_cents}
_NAMES = {
    "compose": ("tokens_in", "tokens_out", "in_cents_per_m", "out_cents_per_m"),
    "price": ("tokens_in", "tokens_out", "rate_in_per_mtok_micro", "rate_out_per_mtok_micro"),
}
_BAD = [
    pytest.param(True, "must be an integer, found bool True", id="bool"),
    pytest.param(1.0, "must be an integer, found float 1.0", id="float"),
    pytest.param(float("nan"), "must be an integer, found float nan", id="nan"),
    pytest.param("5", "must be an integer, found str '5'", id="str"),
    pytest.param(None, "must be an integer, found NoneType None", id="none"),
    pytest.param(-1, "must not be negative, found -1", id="negative"),
]


@pytest.mark.parametrize("func", sorted(_FUNCS))
@pytest.mark.parametrize("position", range(4))
@pytest.mark.parametrize(("value", "message"), _BAD)
def test_formulas_refuse_non_integer_and_negative_counts(
    func: str, position: int, value: Any, message: str
) -> None:
    args = list(_GOOD)
    args[position] = value
    with pytest.raises(InputError, match=f"^{_NAMES[func][position]} {message}"):
        _FUNCS[func](*args)


@pytest.mark.parametrize("func", [display_cents, format_usd, format_cents_exact])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(False, "micro-cents must be an integer, found bool False", id="bool"),
        pytest.param(0.5, "micro-cents must be an integer, found float 0.5", id="float"),
        pytest.param(Fraction(1, 2), "found Fraction Fraction(1, 2)", id="fraction"),
    ],
)
def test_display_refuses_non_integers(func: Any, value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        func(value)


def test_error_text_is_bounded() -> None:
    with pytest.raises(InputError) as caught:
        display_cents("x" * 10_000)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 100


# -- properties -------------------------------------------------------------------------

_amounts = st.integers(-(2**80), 2**80)
_counts = st.integers(0, 2**70)


@given(_amounts, _amounts)
def test_display_rounding_is_monotonic(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert display_cents(low) <= display_cents(high)


@given(_amounts)
def test_display_is_within_half_a_cent(micro: int) -> None:
    error = display_cents(micro) * MICRO_CENTS_PER_CENT - micro
    assert -500_000 < error <= 500_000


@given(_amounts, st.integers(-(10**9), 10**9))
def test_display_commutes_with_whole_cents(micro: int, cents: int) -> None:
    assert display_cents(micro + cents * MICRO_CENTS_PER_CENT) == display_cents(micro) + cents


@given(_amounts)
def test_format_usd_shows_display_cents(micro: int) -> None:
    text = format_usd(micro)
    sign = -1 if text.startswith("-") else 1
    dollars, cents = text.lstrip("-").removeprefix("$").split(".")
    assert len(cents) == 2
    assert sign * (int(dollars) * 100 + int(cents)) == display_cents(micro)


@given(_amounts)
def test_format_cents_exact_is_exact(micro: int) -> None:
    assert Fraction(format_cents_exact(micro)) == Fraction(micro, MICRO_CENTS_PER_CENT)


@given(_counts, _counts, _counts, _counts)
def test_price_is_within_two_micro_cents_below_the_exact_value(
    t_in: int, t_out: int, r_in: int, r_out: int
) -> None:
    exact = Fraction(t_in * r_in + t_out * r_out, 1_000_000)
    priced = price_micro_cents(t_in, t_out, r_in, r_out)
    assert 0 <= exact - priced < 2


@given(_counts, _counts, st.integers(0, 2**32), st.integers(0, 2**32))
def test_price_at_whole_cent_rates_equals_compose(
    t_in: int, t_out: int, c_in: int, c_out: int
) -> None:
    """A rate of N ¢/MTok is N,000,000 µ¢/MTok: the two upstream formulas must agree."""
    by_catalog = price_micro_cents(t_in, t_out, c_in * 1_000_000, c_out * 1_000_000)
    assert by_catalog == compose_micro_cents(t_in, t_out, c_in, c_out)


@given(_counts, _counts, _counts, _counts)
def test_price_is_monotonic_in_tokens(t_in: int, extra: int, r_in: int, r_out: int) -> None:
    assert price_micro_cents(t_in, 0, r_in, r_out) <= price_micro_cents(
        t_in + extra, 0, r_in, r_out
    )
