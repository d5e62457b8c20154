"""Fast mode (Anthropic's ``usage.speed: "fast"``): a price's ``fast`` table, the quote
that uses it, the flag when an entry has none, the sync that fills it and the
transcript line that carries it.

Published numbers: Claude Code's fast-mode page (https://code.claude.com/docs/en/fast-mode)
prices fast mode at "$30/$150 MTok on Opus 4.7 and Opus 4.6" (6 x $5/$25) and
"$10/$50 MTok on Opus 4.8"; Anthropic's fast-mode page says the prompt-caching
multipliers apply on top (5-minute write 1.25x, 1-hour write 2x, read 0.1x of the fast
input rate) and that fast mode is priced the same across the full context window.
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.files.catalog import load_catalog
from kei.app.cost_writes import price_request
from kei.domain.catalog.catalog import Catalog, Model
from kei.domain.catalog.pricing import FastRates, Parts, Pricing, recorded_speed, tier_costs
from kei.domain.catalog.sync import SourcePrice, Tiered, pricing_table, render
from kei.domain.claude_code.transcript import Billed, parse_line
from kei.domain.events import TokenUsage
from kei.errors import CatalogError, InputError

USD = 100_000_000  # µ¢ per dollar: a rate of $1/Mtok is 100,000,000 µ¢/Mtok
# Sonnet 4.6 and Haiku 4.5 as main prices them (no fast table): their digests must not move
SONNET_DIGEST = "sha256:1aa246d6b182adbb9961f1ca9128b632c1715958b90a929fbecb48d4d8c04af4"
HAIKU_DIGEST = "sha256:9d6a66334bce0189dccdfc9bab752e8df1ca8ff39d3101c3adbbe2f91b459fea"


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog(None)


def _usage(tin: int, tout: int, read: int = 0, write: int = 0, write_1h: int = 0) -> TokenUsage:
    return TokenUsage(input_tokens=tin, output_tokens=tout, cache_read_tokens=read,
                      cache_write_tokens=write, cache_write_1h_tokens=write_1h)  # fmt: skip


def test_opus_4_7_in_fast_mode_costs_the_published_30_and_150_dollars(shipped: Catalog) -> None:
    """1,000 uncached input, 20,000 written for 5 minutes, 10,000 for an hour, 100,000
    read and 2,000 output, at $30 in, $37.50 / $60 writes, $3 reads, $150 out per Mtok."""
    usage = _usage(131_000, 2_000, read=100_000, write=30_000, write_1h=10_000)
    quote = shipped.quote("claude-opus-4-7", usage, "fast")
    expected = (1_000 * 30 + 20_000 * 37.5 + 10_000 * 60 + 100_000 * 3 + 2_000 * 150) * USD
    assert quote.micro_cents == int(expected) // 1_000_000 == 198_000_000  # $1.98
    assert (quote.fast, quote.speed_unpriced, quote.long_context) == (True, False, False)
    standard = shipped.quote("claude-opus-4-7", usage)
    assert quote.micro_cents == 6 * standard.micro_cents
    assert {t.tier: t.rate for t in quote.tiers} == {
        "input": 30 * USD, "cache_write_5m": 375 * USD // 10, "cache_write_1h": 60 * USD,
        "cache_read": 3 * USD, "output": 150 * USD,
    }  # fmt: skip


def test_standard_and_unreported_speeds_price_as_before(shipped: Catalog) -> None:
    usage = _usage(100, 1_000)
    plain = shipped.quote("claude-opus-4-7", usage)
    for speed in (None, "standard"):
        again = shipped.quote("claude-opus-4-7", usage, speed)
        assert again == plain and not again.fast and not again.speed_unpriced
    assert plain.micro_cents == 100 * 500 + 1_000 * 2_500


def test_without_a_fast_price_standard_rates_and_the_flag(shipped: Catalog) -> None:
    usage = _usage(100, 1_000)
    quote = shipped.quote("claude-sonnet-4-6", usage, "fast")
    assert quote.micro_cents == shipped.quote("claude-sonnet-4-6", usage).micro_cents
    assert (quote.fast, quote.speed_unpriced) == (False, True)
    charge = price_request(shipped, "anthropic", "sonnet", usage, None, "fast")
    fields = charge.fields()
    assert (fields["speed"], fields["speed_unpriced"], fields["unpriced"]) == ("fast", True, False)
    assert fields["micro_cents"] == 100 * 300 + 1_000 * 1_500
    assert charge.note is not None and charge.note.startswith(
        "no fast price for 'claude-sonnet-4-6'; recorded at standard rates"
    )
    # an unknown speed is flagged alike; an amount given by hand is not a price
    assert shipped.quote("claude-opus-4-7", usage, "turbo").speed_unpriced
    assert (
        price_request(shipped, "anthropic", "opus", usage, 5, "fast").fields()["speed_unpriced"]
        is False
    )


def test_a_speed_must_be_a_short_word() -> None:
    assert recorded_speed(None) is None and recorded_speed("standard") is None
    assert recorded_speed("fast") == "fast"
    for bad in ("", "x" * 33, "fa\nst"):
        with pytest.raises(InputError, match="speed must be a word"):
            recorded_speed(bad)


def test_digests_of_entries_without_a_fast_table_do_not_move(shipped: Catalog) -> None:
    assert shipped.get("claude-sonnet-4-6").price_digest == SONNET_DIGEST
    assert shipped.get("claude-haiku-4-5").price_digest == HAIKU_DIGEST
    opus = shipped.get("claude-opus-4-7")
    slower = Catalog.from_data({"models": [_without_fast(opus.to_dict())]}, source="x.toml")
    assert slower.get("claude-opus-4-7").price_digest != opus.price_digest  # fast is covered


def _without_fast(entry: dict[str, Any]) -> dict[str, Any]:
    pricing = {k: v for k, v in entry["pricing"].items() if k != "fast"}
    return {**entry, "pricing": pricing}


def _entry(**pricing: object) -> dict[str, object]:
    base = {"input_per_mtok_micro": 100, "output_per_mtok_micro": 500, "status": "verified",
            "source_url": "https://example.com", "verified_at": "2026-05-01"}  # fmt: skip
    return {"models": [{"id": "m", "provider": "anthropic", "status": "active",
                        "pricing": {**base, **pricing}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("fast", "error"),
    [
        ({"input_per_mtok_micro": 600}, "'pricing.fast.output_per_mtok_micro': expected"),
        ({"input_per_mtok_micro": 1, "output_per_mtok_micro": 1, "long_context": {}},
         "unknown fast field 'long_context'"),
        ({"input_per_mtok_micro": -1, "output_per_mtok_micro": 1}, "expected an integer >= 0"),
        ("fast", "'pricing.fast': expected a table"),
    ],
)  # fmt: skip
def test_a_bad_fast_table_is_one_line_naming_the_field(fast: object, error: str) -> None:
    with pytest.raises(CatalogError, match=error):
        Catalog.from_data(_entry(fast=fast), source="x.toml")


def test_a_fast_table_falls_back_within_itself_and_skips_long_context() -> None:
    data = _entry(long_context={"above_input_tokens": 10, "input_per_mtok_micro": 9_000,
                                "output_per_mtok_micro": 9_000},
                  fast={"input_per_mtok_micro": 600, "output_per_mtok_micro": 3_000})  # fmt: skip
    model = Catalog.from_data(data, source="x.toml").get("m")
    assert model.pricing.fast == FastRates(input_per_mtok_micro=600, output_per_mtok_micro=3_000)
    rates = model.pricing.rates(1_000, fast=True)
    assert (rates.cache_read, rates.cache_write_1h, rates.output) == (600, 600, 3_000)
    assert model.pricing.rates(1_000).input == 9_000  # standard speed: long context applies


_COUNT = st.integers(0, 10**9)
_RATE = st.integers(0, 10**11)
_OPT = st.none() | _RATE


@given(st.data())
def test_a_cost_is_the_sum_of_the_tiers_of_the_chosen_table(data: st.DataObject) -> None:
    draw = data.draw
    fast = draw(st.none() | st.builds(FastRates, input_per_mtok_micro=_RATE,
                                      output_per_mtok_micro=_RATE,
                                      cache_write_5m_per_mtok_micro=_OPT,
                                      cache_write_1h_per_mtok_micro=_OPT,
                                      cache_read_per_mtok_micro=_OPT))  # fmt: skip
    pricing = Pricing(draw(_RATE), draw(_RATE), "needs-verification",
                      cache_read_per_mtok_micro=draw(_OPT), fast=fast)  # fmt: skip
    tin, tout = draw(_COUNT), draw(_COUNT)
    read = draw(st.integers(0, tin))
    write = draw(st.integers(0, tin - read))
    write_1h = draw(st.integers(0, write))
    usage = _usage(tin, tout, read, write, write_1h)
    catalog = Catalog((Model("m", "anthropic", "active", pricing),))
    quote = catalog.quote("m", usage, "fast")
    assert quote.fast is (fast is not None) and quote.speed_unpriced is (fast is None)
    parts = Parts(cache_read=read, cache_write=write, cache_write_1h=write_1h)
    chosen = tier_costs(pricing, tin, tout, parts, fast=fast is not None)
    assert quote.micro_cents == sum(t.micro_cents for t in chosen)
    rates = fast.rates() if fast is not None else pricing.rates(tin)
    by_tier = {t.tier: t for t in quote.tiers}
    assert by_tier["input"].rate == rates.input and by_tier["output"].rate == rates.output
    assert all(t.micro_cents == t.tokens * t.rate // 1_000_000 for t in quote.tiers)


def test_sync_writes_the_fast_variant_as_the_fast_table() -> None:
    rates = {"input_mtok": Decimal(5), "output_mtok": Decimal(25),
             "cache_write_mtok": Decimal("6.25"), "cache_read_mtok": Decimal("0.5"),
             "cache_write_1h_mtok": Decimal(10)}  # fmt: skip
    fast = {**rates, "input_mtok": Decimal(10), "output_mtok": Decimal(50),
            "cache_write_mtok": Decimal("12.5"), "cache_read_mtok": Decimal(1),
            "cache_write_1h_mtok": Decimal(20)}  # fmt: skip
    entry = pricing_table(SourcePrice("claude-opus-4-8", "claude-opus-4-8", rates, fast=fast),
                          "genai-prices 0.2.5")  # fmt: skip
    assert entry.pricing is not None
    assert entry.pricing["fast"] == {
        "input_per_mtok_micro": 10 * USD, "output_per_mtok_micro": 50 * USD,
        "cache_write_5m_per_mtok_micro": 1_250_000_000, "cache_write_1h_per_mtok_micro": 20 * USD,
        "cache_read_per_mtok_micro": 1 * USD,
    }  # fmt: skip
    text = render([entry], "genai-prices 0.2.5")
    assert "\n[models.pricing.fast]\ninput_per_mtok_micro = 1000000000\n" in text
    data = tomllib.loads(text)
    data["models"][0].update(provider="anthropic", status="active")
    catalog = Catalog.from_data(data, source="prices.toml")
    quote = catalog.quote("claude-opus-4-8", _usage(1_000_000, 1_000_000), "fast")
    assert quote.micro_cents == 60 * USD  # $10 + $50
    plain = pricing_table(SourcePrice("m", "m", rates), "v")
    assert plain.pricing is not None and "fast" not in plain.pricing


def test_sync_leaves_out_a_fast_price_kei_cannot_hold() -> None:
    rates = {"input_mtok": Decimal(5), "output_mtok": Decimal(25)}
    tiered = {**rates, "input_mtok": Tiered(Decimal(10), ((200_000, Decimal(20)),))}
    entry = pricing_table(SourcePrice("m", "m", rates, fast=tiered), "v")
    assert entry.pricing is not None and "fast" not in entry.pricing
    assert "speed=fast" in entry.ignored


def _line(speed: object) -> bytes:
    usage: dict[str, object] = {"input_tokens": 100, "output_tokens": 1_000}
    if speed is not None:
        usage["speed"] = speed
    return json.dumps({"type": "assistant", "timestamp": "2026-05-03T10:00:00.000Z",
                       "sessionId": "s1", "requestId": "r1", "uuid": "u1",
                       "message": {"id": "m1", "model": "claude-opus-4-7",
                                   "usage": usage}}).encode()  # fmt: skip


def test_a_transcript_line_keeps_its_speed() -> None:
    fast = parse_line(_line("fast"), 1, "s1")
    assert isinstance(fast, Billed) and fast.usage.speed == "fast"
    plain = parse_line(_line(None), 1, "s1")
    assert isinstance(plain, Billed) and plain.usage.speed is None
    bad = parse_line(_line("x" * 40), 7, "s1")
    assert not isinstance(bad, Billed) and bad is not None
    assert "usage.speed" in str(bad)
