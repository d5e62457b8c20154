"""Prices with every tier (issue 17 item 1): the usage convention, the provider
converters, tier pricing against published numbers, and costs reproduced from the log."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.files.catalog import load_catalog
from kei.domain.agents.money import price_micro_cents
from kei.domain.catalog.catalog import Catalog
from kei.domain.catalog.entries import pricing_dict
from kei.domain.catalog.pricing import RATE_KEYS, Pricing
from kei.domain.catalog.usage import from_anthropic, from_openai
from kei.domain.events import CostRecorded, TokenUsage
from kei.domain.events.payload import Origin
from kei.domain.events.registry import decode_payload, encode_payload
from kei.errors import CatalogError, InputError

M = 1_000_000  # tokens per Mtok
USD = 100_000_000  # µ¢ per dollar


def usd(dollars: float) -> int:
    """A published per-Mtok rate in µ¢ (exact for the cent fractions used here)."""
    return round(dollars * USD)


def token_entry(mid: str, rate_in: int, rate_out: int, **pricing: Any) -> dict[str, Any]:
    return {"id": mid, "provider": "anthropic", "status": "active",
            "pricing": {"input_per_mtok_micro": rate_in, "output_per_mtok_micro": rate_out,
                        "status": "needs-verification", **pricing}}  # fmt: skip


def catalog(*entries: dict[str, Any]) -> Catalog:
    return Catalog.from_data({"models": list(entries)}, source="t.toml")


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog(None)


# --- the issue's example and published prices, one model per tier kind --------------------


def test_the_issues_sonnet_example_under_both_conventions(shipped: Catalog) -> None:
    """$3 in / $15 out / $0.30 cache read: 120,000 input with 80,000 cache reads and
    9,000 output is $0.279 when the 120,000 include the reads (OpenTelemetry, kei's
    convention) and $0.519 when they do not (Anthropic's fields, converted on the way in)."""
    otel = TokenUsage(input_tokens=120_000, output_tokens=9_000, cache_read_tokens=80_000)
    assert shipped.quote("sonnet", otel).micro_cents == 27_900_000  # $0.279
    anthropic = from_anthropic({"input_tokens": 120_000, "cache_read_input_tokens": 80_000,
                                "cache_creation_input_tokens": 0, "output_tokens": 9_000})  # fmt: skip
    assert anthropic.input_tokens == 200_000
    assert shipped.quote("sonnet", anthropic).micro_cents == 51_900_000  # $0.519


def test_anthropic_cache_writes_5m_and_1h_at_published_rates(shipped: Catalog) -> None:
    """Opus 4.7, $5/Mtok input: 5-minute writes at 1.25x ($6.25), 1-hour at 2x ($10),
    reads at 0.1x ($0.50), output $25."""
    usage = from_anthropic({
        "input_tokens": 1_000, "output_tokens": 2_000,
        "cache_creation_input_tokens": 30_000, "cache_read_input_tokens": 100_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 20_000,
                           "ephemeral_1h_input_tokens": 10_000},
    })  # fmt: skip
    q = shipped.quote("opus", usage)
    tiers = {t.tier: (t.tokens, t.micro_cents) for t in q.tiers}
    assert tiers == {
        "input": (1_000, 1_000 * usd(5) // M),
        "cache_write_5m": (20_000, 20_000 * usd(6.25) // M),
        "cache_write_1h": (10_000, 10_000 * usd(10) // M),
        "cache_read": (100_000, 100_000 * usd(0.5) // M),
        "output": (2_000, 2_000 * usd(25) // M),
    }
    assert q.micro_cents == 500_000 + 12_500_000 + 10_000_000 + 5_000_000 + 5_000_000


def test_openai_cached_input_at_the_published_rate(shipped: Catalog) -> None:
    """GPT-4o: $2.50 input, $1.25 cached input, $10 output; prompt_tokens include the
    cached ones and completion_tokens the reasoning ones."""
    usage = from_openai({"prompt_tokens": 10_000, "completion_tokens": 1_000,
                         "prompt_tokens_details": {"cached_tokens": 8_000},
                         "completion_tokens_details": {"reasoning_tokens": 0}})  # fmt: skip
    assert shipped.quote("gpt-4o", usage).micro_cents == 500_000 + 1_000_000 + 1_000_000


def test_long_context_tier_replaces_every_rate_above_the_threshold() -> None:
    """Anthropic's published Sonnet 4.5 rates with the 1M context: above 200k input
    tokens (cached ones counted) $6 input, $22.50 output, $7.50 / $12 cache writes,
    $0.60 cache reads, for all the call's tokens."""
    sonnet = token_entry("claude-sonnet-4-5", usd(3), usd(15),
                         cache_write_5m_per_mtok_micro=usd(3.75),
                         cache_write_1h_per_mtok_micro=usd(6),
                         cache_read_per_mtok_micro=usd(0.3),
                         long_context={"above_input_tokens": 200_000,
                                       "input_per_mtok_micro": usd(6),
                                       "output_per_mtok_micro": usd(22.5),
                                       "cache_write_5m_per_mtok_micro": usd(7.5),
                                       "cache_write_1h_per_mtok_micro": usd(12),
                                       "cache_read_per_mtok_micro": usd(0.6)})  # fmt: skip
    cat = catalog(sonnet)
    at = TokenUsage(input_tokens=200_000, output_tokens=1_000, cache_read_tokens=150_000)
    below = cat.quote("claude-sonnet-4-5", at)
    assert not below.long_context
    assert below.micro_cents == 50_000 * usd(3) // M + 150_000 * usd(0.3) // M + 1_500_000
    above = cat.quote("claude-sonnet-4-5", msgspec.structs.replace(at, input_tokens=250_000))
    assert above.long_context
    assert above.micro_cents == (100_000 * usd(6) // M + 150_000 * usd(0.6) // M
                                 + 1_000 * usd(22.5) // M)  # fmt: skip


def test_reasoning_billed_apart_where_the_provider_does() -> None:
    """Gemini 2.5 Flash (preview, April 2025): $0.15 input, $0.60 output without
    thinking, $3.50 thinking output; an entry without a reasoning rate bills it as output."""
    flash = token_entry("gemini-2.5-flash-preview", usd(0.15), usd(0.6),
                        reasoning_per_mtok_micro=usd(3.5))  # fmt: skip
    flash["provider"] = "google"
    usage = TokenUsage(input_tokens=10_000, output_tokens=5_000, reasoning_tokens=4_000)
    q = catalog(flash).quote("gemini-2.5-flash-preview", usage)
    assert {t.tier: t.tokens for t in q.tiers} == {"input": 10_000, "output": 1_000,
                                                   "reasoning": 4_000}  # fmt: skip
    assert q.micro_cents == 150_000 + 60_000 + 1_400_000
    plain = catalog(token_entry("o", usd(0.15), usd(0.6)))
    assert plain.quote("o", usage).micro_cents == 150_000 + 300_000


def test_parts_larger_than_their_whole_are_refused(shipped: Catalog) -> None:
    with pytest.raises(InputError, match="include them"):
        shipped.quote("sonnet", TokenUsage(input_tokens=10, output_tokens=0, cache_read_tokens=11))
    with pytest.raises(InputError, match="of which it is a part"):
        shipped.quote("sonnet", TokenUsage(input_tokens=10, output_tokens=0,
                                           cache_write_tokens=1, cache_write_1h_tokens=2))  # fmt: skip
    with pytest.raises(InputError, match="reasoning_tokens"):
        shipped.quote("sonnet", TokenUsage(input_tokens=1, output_tokens=1, reasoning_tokens=2))


# --- converters ----------------------------------------------------------------------------


def test_from_anthropic_adds_the_cache_counts_into_input() -> None:
    u = from_anthropic({"input_tokens": 3, "output_tokens": 7, "cache_read_input_tokens": 50,
                        "cache_creation_input_tokens": 20, "service_tier": "standard",
                        "cache_creation": {"ephemeral_5m_input_tokens": 15,
                                           "ephemeral_1h_input_tokens": 5}})  # fmt: skip
    assert u == TokenUsage(input_tokens=73, output_tokens=7, cache_read_tokens=50,
                           cache_write_tokens=20, cache_write_1h_tokens=5)  # fmt: skip
    only_split = from_anthropic({"input_tokens": 1, "output_tokens": 0,
                                 "cache_creation": {"ephemeral_5m_input_tokens": 4,
                                                    "ephemeral_1h_input_tokens": 6}})  # fmt: skip
    assert (only_split.input_tokens, only_split.cache_write_tokens) == (11, 10)


def test_from_openai_reads_both_apis_and_keeps_the_totals() -> None:
    chat = from_openai({"prompt_tokens": 100, "completion_tokens": 40,
                        "prompt_tokens_details": {"cached_tokens": 64},
                        "completion_tokens_details": {"reasoning_tokens": 30}})  # fmt: skip
    assert chat == TokenUsage(input_tokens=100, output_tokens=40, cache_read_tokens=64,
                              reasoning_tokens=30)  # fmt: skip
    responses = from_openai({"input_tokens": 100, "output_tokens": 40,
                             "input_tokens_details": {"cached_tokens": 64},
                             "output_tokens_details": {"reasoning_tokens": 30}})  # fmt: skip
    assert responses == chat


@pytest.mark.parametrize("bad", [None, "12", -1, 1.5, True])
def test_converters_leave_a_bad_count_unknown(bad: object) -> None:
    assert from_anthropic({"input_tokens": bad, "output_tokens": bad}) == TokenUsage()
    assert from_openai({"prompt_tokens": bad, "prompt_tokens_details": {"cached_tokens": bad}}) \
        == TokenUsage()  # fmt: skip


# --- properties: a cost is the sum of its tiers, and is reproduced from the log -----------

rate = st.integers(0, 10**10)
maybe_rate = st.none() | rate


@st.composite
def pricings(draw: st.DrawFn) -> Pricing:
    long = None
    if draw(st.booleans()):
        long = {"above_input_tokens": draw(st.integers(0, 10**6)),
                "input_per_mtok_micro": draw(rate), "output_per_mtok_micro": draw(rate),
                **{k: v for k in RATE_KEYS if (v := draw(maybe_rate)) is not None}}  # fmt: skip
    raw = {"input_per_mtok_micro": draw(rate), "output_per_mtok_micro": draw(rate),
           "status": "needs-verification",
           **{k: v for k in RATE_KEYS if (v := draw(maybe_rate)) is not None}}  # fmt: skip
    if long is not None:
        raw["long_context"] = long
    return catalog({"id": "m", "provider": "local", "status": "active", "pricing": raw}) \
        .get("m").pricing  # fmt: skip


@st.composite
def usages(draw: st.DrawFn) -> TokenUsage:
    read, write = draw(st.integers(0, 10**7)), draw(st.integers(0, 10**7))
    write_1h = draw(st.integers(0, write))
    reasoning = draw(st.integers(0, 10**7))
    return TokenUsage(
        input_tokens=read + write + draw(st.integers(0, 10**7)),
        output_tokens=reasoning + draw(st.integers(0, 10**7)),
        cache_read_tokens=draw(st.none() | st.just(read)),
        cache_write_tokens=write, cache_write_1h_tokens=draw(st.none() | st.just(write_1h)),
        reasoning_tokens=draw(st.none() | st.just(reasoning)),
    )  # fmt: skip


def _catalog_of(p: Pricing) -> Catalog:
    data = {"id": "m", "provider": "local", "status": "active",
            "pricing": pricing_dict(p)}  # fmt: skip
    return catalog(data)


@given(pricings(), usages())
def test_a_cost_is_the_sum_of_its_floored_tiers(p: Pricing, u: TokenUsage) -> None:
    q = _catalog_of(p).quote("m", u)
    assert q.micro_cents == sum(t.micro_cents for t in q.tiers)
    for t in q.tiers:
        assert t.micro_cents == t.tokens * t.rate // M
    tokens = {t.tier: t.tokens for t in q.tiers}
    assert sum(tokens.get(k, 0) for k in ("input", "cache_write_5m", "cache_write_1h",
                                          "cache_read")) == u.input_tokens  # fmt: skip
    assert tokens["output"] + tokens.get("reasoning", 0) == u.output_tokens


@given(st.integers(0, 10**9), st.integers(0, 10**9), rate, rate)
def test_an_entry_without_tiers_prices_as_before(tin: int, tout: int, rin: int, rout: int) -> None:
    cat = catalog(token_entry("m", rin, rout))
    assert cat.price("m", tin, tout).micro_cents == price_micro_cents(tin, tout, rin, rout)


@given(pricings(), usages())
def test_a_recorded_cost_is_reproduced_from_the_log(p: Pricing, u: TokenUsage) -> None:
    """Decode the stored event, find the entry it names (id and hash), price the stored
    usage again: the same micro-cents."""
    cat = _catalog_of(p)
    entry = cat.get("m")
    event = CostRecorded(agent_id="a", provider="local", model="m",
                         micro_cents=cat.quote("m", u).micro_cents, usage=u,
                         price_entry_id=entry.id, price_entry_hash=entry.price_digest)  # fmt: skip
    back = decode_payload("cost.recorded", encode_payload(event))
    assert isinstance(back, CostRecorded)
    named = cat.get(back.price_entry_id or "")
    assert named.price_digest == back.price_entry_hash
    assert cat.quote(named.id, back.usage).micro_cents == back.micro_cents


# --- the digest covers every tier, and is unchanged for an entry that sets none -----------


def test_digest_covers_every_tier_rate() -> None:
    """Changing any one rate of either tier, or the threshold, changes the digest."""

    def variant(top: dict[str, int], long: dict[str, int]) -> str:
        lc = {"above_input_tokens": 10, "input_per_mtok_micro": 600,
              "output_per_mtok_micro": 2250, **long}  # fmt: skip
        return catalog(token_entry("m", 300, 1500, long_context=lc, **top)).get("m").price_digest

    keys = (*RATE_KEYS, "input_per_mtok_micro", "output_per_mtok_micro")
    digests = [variant({}, {})]
    digests += [variant({k: 7}, {}) for k in RATE_KEYS]
    digests += [variant({}, {k: 7}) for k in (*keys, "above_input_tokens")]
    assert len(set(digests)) == len(digests)


def test_an_entry_without_tiers_keeps_its_old_digest() -> None:
    """The digest of the first catalogs: sha256 of the id and the six first fields."""
    import hashlib
    import json

    m = catalog(token_entry("m", 300, 1500)).get("m")
    old = {"id": "m", "input_per_mtok_micro": 300, "output_per_mtok_micro": 1500,
           "status": "needs-verification", "unit": "token", "source_url": None,
           "verified_at": None}  # fmt: skip
    raw = json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    assert m.price_digest == "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("pricing", "message"),
    [
        ({"cache_read_per_mtok_micro": -1}, "cache_read_per_mtok_micro': expected an integer"),
        ({"long_context": {"input_per_mtok_micro": 1, "output_per_mtok_micro": 1}},
         "above_input_tokens': expected an integer"),
        ({"long_context": {"above_input_tokens": 1, "input_per_mtok_micro": 1,
                           "output_per_mtok_micro": 1, "cache_reed_per_mtok_micro": 1}},
         "unknown long_context field 'cache_reed_per_mtok_micro'"),
        ({"unit": "image", "cache_read_per_mtok_micro": 1}, "only a token price has"),
        ({"status": "placeholder", "input_per_mtok_micro": 0, "output_per_mtok_micro": 0,
          "cache_read_per_mtok_micro": 1}, "every rate 0"),
    ],
)  # fmt: skip
def test_bad_tiers_are_refused_with_one_line(pricing: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        catalog(token_entry("m", 1, 1, **pricing))


# --- old events still decode ----------------------------------------------------------------


class _OldUsage(msgspec.Struct, frozen=True, kw_only=True):
    """TokenUsage as cost events of schema 2 wrote it (no one-hour cache writes)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


class _OldCost(msgspec.Struct, frozen=True, kw_only=True):
    """cost.recorded of schema 2 (no ``unpriced``)."""

    agent_id: str
    provider: str
    model: str
    micro_cents: int
    usage: _OldUsage = _OldUsage()
    price_entry_id: str | None = None
    price_entry_hash: str | None = None
    origin: Origin | None = None


def test_an_event_encoded_with_the_old_token_usage_decodes() -> None:
    old = _OldCost(agent_id="a", provider="anthropic", model="sonnet", micro_cents=49_500_000,
                   usage=_OldUsage(input_tokens=120_000, output_tokens=9_000,
                                   cache_read_tokens=80_000, cache_write_tokens=3))  # fmt: skip
    raw = msgspec.msgpack.encode(old)
    back = decode_payload("cost.recorded", raw)
    assert isinstance(back, CostRecorded)
    assert back.micro_cents == 49_500_000 and back.unpriced is False
    assert back.usage.cache_write_1h_tokens is None
    assert (back.usage.cache_read_tokens, back.usage.cache_write_tokens) == (80_000, 3)
