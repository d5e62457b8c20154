"""A price entry with every tier, and the cost of one call's usage as a sum of tiers.

Pure. Rates are integers of µ¢ per million tokens (``$3/Mtok`` is ``300_000_000``).
The usage follows ``TokenUsage``'s convention (OpenTelemetry GenAI): ``input_tokens``
includes the cache reads and writes, ``output_tokens`` includes reasoning. Rules
(``docs/cli.md``, "Prices"):

- The input splits into four tiers: uncached input (``input - cache_read -
  cache_write``), cache writes for five minutes (``cache_write - cache_write_1h``), cache
  writes for one hour and cache reads; the output into output and, only where the entry
  bills reasoning at its own rate, reasoning. An unknown (None) cache or reasoning
  count is 0: those tokens are then priced as plain input or output.
- A rate the entry leaves out falls back to the rate the provider would otherwise bill:
  cache write (5 min) and cache read to the input rate, cache write (1 h) to the
  five-minute rate, reasoning to the output rate. So an entry with only input and
  output rates prices exactly as it did before tiers existed.
- A long-context tier (``long_context``, e.g. Anthropic's rates above 200k input
  tokens) replaces every rate when ``input_tokens`` is above its threshold; the
  threshold counts all input, cached included.
- A fast-mode table (``fast``, Anthropic's ``speed: "fast"``) replaces every rate of a
  call made at that speed, whatever its input size (Anthropic prices fast mode "across
  the full context window"): the base table's ``long_context`` does not apply. Left-out
  rates fall back within the fast table. A fast call on an entry without one is priced
  at the base rates; the caller says so (``Catalog.quote``'s ``speed_unpriced``).
- Each tier costs ``tokens * rate // 1,000,000`` (floored on its own, as
  ``money.price_micro_cents``); the cost is the sum of the tiers.

Example (Sonnet at $3/$15, cache reads $0.30; 120k input of which 80k cache reads)::

    >>> p = Pricing(300_000_000, 1_500_000_000, "verified",
    ...             cache_read_per_mtok_micro=30_000_000)
    >>> sum(t.micro_cents for t in tier_costs(p, 120_000, 9_000, Parts(cache_read=80_000)))
    27900000
"""

from __future__ import annotations

from msgspec import Struct

from kei.domain.agents.money import TOKENS_PER_MTOK
from kei.errors import InputError

__all__ = [
    "FAST",
    "RATE_KEYS",
    "TIERS",
    "FastRates",
    "LongContext",
    "Parts",
    "Pricing",
    "Rates",
    "TierCost",
    "recorded_speed",
    "tier_costs",
]

TIERS = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "reasoning")
FAST = "fast"  # the speed a ``fast`` table prices (Anthropic's ``usage.speed``)
STANDARD = "standard"
MAX_SPEED_CHARS = 32
# The optional per-tier rates a price table may give, beside the input and output rates.
RATE_KEYS = (
    "cache_write_5m_per_mtok_micro",
    "cache_write_1h_per_mtok_micro",
    "cache_read_per_mtok_micro",
    "reasoning_per_mtok_micro",
)


class Rates(Struct, frozen=True):
    """Every tier's rate resolved (the fallbacks of the module rules applied)."""

    input: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    output: int
    reasoning: int | None  # None: reasoning is billed as output


class RateTable(Struct, frozen=True, kw_only=True):
    """A table of rates that replaces the base table's (:class:`LongContext`,
    :class:`FastRates`); left-out rates fall back within it (the module rules), never
    to the base table."""

    input_per_mtok_micro: int
    output_per_mtok_micro: int
    cache_write_5m_per_mtok_micro: int | None = None
    cache_write_1h_per_mtok_micro: int | None = None
    cache_read_per_mtok_micro: int | None = None
    reasoning_per_mtok_micro: int | None = None

    def rates(self) -> Rates:
        return _resolve(self.input_per_mtok_micro, self.output_per_mtok_micro, self)


class LongContext(RateTable, frozen=True, kw_only=True):
    """The rates above ``above_input_tokens`` input tokens."""

    above_input_tokens: int


class FastRates(RateTable, frozen=True, kw_only=True):
    """The rates of a call made in fast mode (``[models.pricing.fast]``)."""


class Pricing(Struct, frozen=True):
    """A price entry: rates in µ¢ per million units (tokens unless ``unit`` says
    otherwise) and its provenance (``source_url`` and ``verified_at``, or
    ``source_version`` for a price taken from a versioned price database)."""

    input_per_mtok_micro: int
    output_per_mtok_micro: int
    status: str
    unit: str = "token"
    source_url: str | None = None
    verified_at: str | None = None
    cache_write_5m_per_mtok_micro: int | None = None
    cache_write_1h_per_mtok_micro: int | None = None
    cache_read_per_mtok_micro: int | None = None
    reasoning_per_mtok_micro: int | None = None
    long_context: LongContext | None = None
    source_version: str | None = None
    fast: FastRates | None = None

    @property
    def vouched(self) -> bool:
        return self.status == "verified"

    def rates(self, input_tokens: int = 0, *, fast: bool = False) -> Rates:
        """The rates that apply to a call with ``input_tokens`` input tokens, made in
        fast mode when ``fast`` (the base rates when the entry has no fast table)."""
        if fast and self.fast is not None:
            return self.fast.rates()
        lc = self.long_context
        if lc is not None and input_tokens > lc.above_input_tokens:
            return lc.rates()
        return _resolve(self.input_per_mtok_micro, self.output_per_mtok_micro, self)


class Parts(Struct, frozen=True, kw_only=True):
    """The parts of a call's input and output that tiers price apart (0: none)."""

    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0


class TierCost(Struct, frozen=True):
    """One tier of a cost: its tokens, its rate (µ¢/Mtok) and its floored cost (µ¢)."""

    tier: str
    tokens: int
    rate: int
    micro_cents: int


def tier_costs(
    p: Pricing, input_tokens: int, output_tokens: int, parts: Parts, *, fast: bool = False
) -> list[TierCost]:
    """The cost of a token-priced call, tier by tier (the module rules), at the fast
    table's rates when ``fast`` and the entry has one.

    Input and output always appear; any other tier only when it has tokens. A part
    larger than the count it is a part of is an :class:`InputError`.
    """
    _check_parts(input_tokens, output_tokens, parts)
    r = p.rates(input_tokens, fast=fast)
    write_5m = parts.cache_write - parts.cache_write_1h
    uncached = input_tokens - parts.cache_read - parts.cache_write
    split_reasoning = r.reasoning is not None and parts.reasoning > 0
    output = output_tokens - parts.reasoning if split_reasoning else output_tokens
    rows = [
        ("input", uncached, r.input),
        ("cache_write_5m", write_5m, r.cache_write_5m),
        ("cache_write_1h", parts.cache_write_1h, r.cache_write_1h),
        ("cache_read", parts.cache_read, r.cache_read),
        ("output", output, r.output),
        ("reasoning", parts.reasoning if split_reasoning else 0, r.reasoning or 0),
    ]
    return [
        TierCost(name, n, rate, n * rate // TOKENS_PER_MTOK)
        for name, n, rate in rows
        if n or name in ("input", "output")
    ]


def recorded_speed(speed: str | None) -> str | None:
    """The speed a cost event records for a call reported at ``speed``: None for the
    standard speed (or none reported), else the speed itself. A speed that is not a
    short printable word is an :class:`InputError`."""
    if speed is None or speed == STANDARD:
        return None
    if not speed or len(speed) > MAX_SPEED_CHARS or not speed.isprintable():
        raise InputError(
            f"speed must be a word of at most {MAX_SPEED_CHARS} characters "
            f"(standard or {FAST}), found {speed!r:.40}"
        )
    return speed


def _resolve(input_rate: int, output_rate: int, t: Pricing | RateTable) -> Rates:
    write_5m = _or(t.cache_write_5m_per_mtok_micro, input_rate)
    return Rates(
        input=input_rate,
        cache_write_5m=write_5m,
        cache_write_1h=_or(t.cache_write_1h_per_mtok_micro, write_5m),
        cache_read=_or(t.cache_read_per_mtok_micro, input_rate),
        output=output_rate,
        reasoning=t.reasoning_per_mtok_micro,
    )


def _or(rate: int | None, fallback: int) -> int:
    return fallback if rate is None else rate


def _check_parts(input_tokens: int, output_tokens: int, parts: Parts) -> None:
    counts = (input_tokens, output_tokens, parts.cache_read, parts.cache_write,
              parts.cache_write_1h, parts.reasoning)  # fmt: skip
    if not all(n.__class__ is int and n >= 0 for n in counts):  # else named below (rare)
        for name, n in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                        *((f"{k}_tokens", v) for k, v in _parts_items(parts))):  # fmt: skip
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InputError(f"{name} must be an integer >= 0, found {n!r}")
    if parts.cache_write_1h > parts.cache_write:
        raise InputError(
            f"cache_write_1h_tokens ({parts.cache_write_1h}) is more than cache_write_tokens "
            f"({parts.cache_write}), of which it is a part"
        )
    if parts.cache_read + parts.cache_write > input_tokens:
        raise InputError(
            f"cache reads and writes ({parts.cache_read} + {parts.cache_write}) are more than "
            f"input_tokens ({input_tokens}), which include them (OpenTelemetry GenAI); "
            "give the input count with the cached tokens in it"
        )
    if parts.reasoning > output_tokens:
        raise InputError(
            f"reasoning_tokens ({parts.reasoning}) is more than output_tokens "
            f"({output_tokens}), which include them"
        )


def _parts_items(parts: Parts) -> list[tuple[str, int]]:
    return [("cache_read", parts.cache_read), ("cache_write", parts.cache_write),
            ("cache_write_1h", parts.cache_write_1h), ("reasoning", parts.reasoning)]  # fmt: skip
