"""Money: integer micro-cents, upstream's two cost formulas, and display rounding.

kei never holds money in a float. Rules (``docs/events.md`` §9):

- An amount is an ``int`` of micro-cents: 1 cent = 1,000,000 µ¢, $1 = 100,000,000 µ¢.
- Token counts and rates are non-negative ``int``; a ``bool``, a ``float`` or a
  negative value is refused with :class:`InputError` (a float is how a rounding
  error would get in; a bool is an int only by accident of Python).
- Amounts may be negative (a correction, a difference between reports).
- Display rounds once, half up (towards +infinity) to whole cents; totals are
  summed exactly in micro-cents first and rounded only when shown.
- Upstream saturates at u64 max (18,446,744,073,709,551,615 µ¢, about $184
  billion). Python ints do not overflow, so kei computes the exact value and
  never saturates; an amount that large is a bug upstream hides and kei shows.

Example::

    >>> compose_micro_cents(1_500_000, 500_000, 100, 500)
    400000000
    >>> format_usd(400_000_000), display_cents(1_500_000)
    ('$4.00', 2)
"""

from __future__ import annotations

from kei.errors import InputError

__all__ = [
    "MICRO_CENTS_PER_CENT",
    "MICRO_CENTS_PER_DOLLAR",
    "TOKENS_PER_MTOK",
    "compose_micro_cents",
    "display_cents",
    "format_cents_exact",
    "format_usd",
    "price_micro_cents",
]

MICRO_CENTS_PER_CENT = 1_000_000
MICRO_CENTS_PER_DOLLAR = 100 * MICRO_CENTS_PER_CENT
TOKENS_PER_MTOK = 1_000_000


def display_cents(micro: int) -> int:
    """Whole cents to show for ``micro`` µ¢: ``(micro + 500_000) // 1_000_000``.

    Half up, as upstream (whose comment calls it banker's rounding; it is not).
    For negative amounts the same formula rounds halves towards +infinity
    (-500,000 µ¢ -> 0, -1,500,000 µ¢ -> -1), which keeps rounding monotonic and
    ``display_cents(m + k * 1_000_000) == display_cents(m) + k`` for every ``k``.
    """
    if type(micro) is not int:  # the common case skips the call: reports format 100,000s
        _require_int("micro-cents", micro)
    return (micro + MICRO_CENTS_PER_CENT // 2) // MICRO_CENTS_PER_CENT


def compose_micro_cents(
    tokens_in: int, tokens_out: int, in_cents_per_m: int, out_cents_per_m: int
) -> int:
    """Exact cost from rates in whole cents per million tokens (upstream kei-ledger).

    ``tokens * cents_per_M`` is already micro-cents (1 cent / 1M tokens = 1 µ¢
    per token), so there is no division and no rounding.
    """
    _require_counts(tokens_in=tokens_in, tokens_out=tokens_out)
    _require_counts(in_cents_per_m=in_cents_per_m, out_cents_per_m=out_cents_per_m)
    return tokens_in * in_cents_per_m + tokens_out * out_cents_per_m


def price_micro_cents(
    tokens_in: int,
    tokens_out: int,
    rate_in_per_mtok_micro: int,
    rate_out_per_mtok_micro: int,
) -> int:
    """Cost from catalog rates in µ¢ per million tokens (upstream kei-model ``estimate``).

    ``floor(in * rate_in / 1e6) + floor(out * rate_out / 1e6)``, each term
    floored on its own, so a sub-µ¢ remainder on one side never carries over.
    Integer arithmetic only.
    """
    _require_counts(tokens_in=tokens_in, tokens_out=tokens_out)
    _require_counts(
        rate_in_per_mtok_micro=rate_in_per_mtok_micro,
        rate_out_per_mtok_micro=rate_out_per_mtok_micro,
    )
    return (tokens_in * rate_in_per_mtok_micro) // TOKENS_PER_MTOK + (
        tokens_out * rate_out_per_mtok_micro
    ) // TOKENS_PER_MTOK


def format_usd(micro: int) -> str:
    """``micro`` µ¢ as dollars with two decimals, e.g. ``$4.00`` or ``-$0.01``.

    Rounded once, to whole cents by :func:`display_cents` (half up). No
    thousands separators, so the text parses back as a number.
    """
    cents = display_cents(micro)
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars}.{rest:02d}"


def format_cents_exact(micro: int) -> str:
    """``micro`` µ¢ as cents with six decimals and no rounding, e.g. ``1.500000``.

    Upstream ``kei-model price`` prints ``"%.6f"`` of ``micro / 1e6``; this is
    that text computed in integers, exact at any size.
    """
    _require_int("micro-cents", micro)
    sign = "-" if micro < 0 else ""
    cents, rest = divmod(abs(micro), MICRO_CENTS_PER_CENT)
    return f"{sign}{cents}.{rest:06d}"


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value)[:40]
        raise InputError(f"{name} must be an integer, found {type(value).__name__} {shown}")
    return value


def _require_counts(**values: object) -> None:
    for name, value in values.items():
        if _require_int(name, value) < 0:
            raise InputError(f"{name} must not be negative, found {value}")
