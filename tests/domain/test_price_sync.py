"""``kei models sync``'s conversion: a price database's rates as kei catalog entries."""

from __future__ import annotations

import tomllib
from decimal import Decimal

from kei.domain.catalog.catalog import Catalog
from kei.domain.catalog.sync import SOURCE_URL, SourcePrice, Tiered, pricing_table, render
from kei.domain.events import TokenUsage

V = "genai-prices 0.2.3"
SONNET = {"input_mtok": Decimal("3"), "output_mtok": Decimal("15"),
          "cache_write_mtok": Decimal("3.75"), "cache_write_1h_mtok": Decimal("6"),
          "cache_read_mtok": Decimal("0.3"), "web_searches_kcount": Decimal("10")}  # fmt: skip


def test_rates_become_integer_micro_cents_with_provenance() -> None:
    e = pricing_table(SourcePrice("claude-sonnet-4-6", "claude-sonnet-4-6", SONNET), V)
    assert e.pricing == {
        "input_per_mtok_micro": 300_000_000, "output_per_mtok_micro": 1_500_000_000,
        "cache_write_5m_per_mtok_micro": 375_000_000,
        "cache_write_1h_per_mtok_micro": 600_000_000, "cache_read_per_mtok_micro": 30_000_000,
        "status": "verified", "source_url": SOURCE_URL, "source_version": V,
    }  # fmt: skip
    assert e.ignored == ("web_searches_kcount",) and e.skipped is None


def test_one_threshold_becomes_the_long_context_tier() -> None:
    """Sonnet 4.5's published tiers: every rate doubles (output 1.5x) above 200k input."""
    tiered = {"input_mtok": Tiered(Decimal("3"), ((200_000, Decimal("6")),)),
              "output_mtok": Tiered(Decimal("15"), ((200_000, Decimal("22.5")),)),
              "cache_read_mtok": Decimal("0.3")}  # fmt: skip
    e = pricing_table(SourcePrice("s", "s", tiered), V)
    assert e.pricing is not None
    assert e.pricing["long_context"] == {
        "above_input_tokens": 200_000, "input_per_mtok_micro": 600_000_000,
        "output_per_mtok_micro": 2_250_000_000, "cache_read_per_mtok_micro": 30_000_000,
    }  # fmt: skip


def test_what_kei_cannot_hold_exactly_is_skipped_with_the_reason() -> None:
    two = {"input_mtok": Tiered(Decimal("1"), ((128_000, Decimal("2")), (1_000_000, Decimal("3")))),
           "output_mtok": Decimal("1")}  # fmt: skip
    assert (
        pricing_table(SourcePrice("m", "m", two), V).skipped == "tiers at more than one threshold"
    )
    odd = {"input_mtok": Decimal("0.000000001"), "output_mtok": Decimal("1")}
    assert "not a whole number of µ¢" in (
        pricing_table(SourcePrice("m", "m", odd), V).skipped or ""
    )
    none = {"requests_kcount": Decimal("1")}
    assert pricing_table(SourcePrice("m", "m", none), V).skipped == "no input or output token price"


def test_the_rendered_file_overlays_the_catalog_and_prices_every_tier() -> None:
    base = Catalog.from_data({"models": [{"id": "claude-sonnet-4-6", "provider": "anthropic",
                                          "status": "active", "aliases": ["sonnet"],
                                          "pricing": {"input_per_mtok_micro": 1,
                                                      "output_per_mtok_micro": 1,
                                                      "status": "needs-verification"}}]},
                             source="shipped")  # fmt: skip
    import tomllib

    text = render([pricing_table(SourcePrice("claude-sonnet-4-6", "x", SONNET), V)], V)
    synced = base.overlay(tomllib.loads(text), source="prices.toml")
    m = synced.get("sonnet")
    assert m.aliases == ("sonnet",)  # only the price is replaced
    assert m.pricing.vouched and m.pricing.source_version == V and m.pricing.verified_at is None
    usage = TokenUsage(input_tokens=120_000, output_tokens=9_000, cache_read_tokens=80_000)
    assert synced.quote("sonnet", usage).micro_cents == 27_900_000


def test_a_model_the_catalog_lacks_is_written_whole_and_loads() -> None:
    """An added entry carries what a catalog entry needs (provider, status, name,
    context) and no role, so it prices calls and the router never picks it alone."""
    from kei.domain.catalog.sync import SourceModel

    new = SourceModel("anthropic", "Claude Opus 4.6", 1_000_000, deprecated=False)
    price = SourcePrice("claude-opus-4-6", "claude-opus-4-6", SONNET, True, ("opus-4.6",), new)
    e = pricing_table(price, V)
    assert e.added and e.fields["provider"] == "anthropic" and e.fields["dated_snapshots"] is True
    old = SourceModel("anthropic", "Claude 2", 0, deprecated=True)
    gone = pricing_table(SourcePrice("claude-2", "claude-2", SONNET, added=old), V)
    catalog = Catalog.from_data({}, source="empty").overlay(
        tomllib.loads(render([e, gone], V)), source="prices.toml"
    )
    model = catalog.get("claude-opus-4-6-20260101")  # a dated snapshot of it
    assert model.id == "claude-opus-4-6" and model.context_tokens == 1_000_000
    assert catalog.get("opus-4.6") is model and model.role_tags == ()
    assert catalog.get("claude-2").status == "deprecated"
    assert catalog.price("claude-opus-4-6", 1_000_000, 0).micro_cents == 300_000_000


def test_a_known_model_keeps_its_aliases_and_gains_the_databases_names() -> None:
    price = SourcePrice("gpt-4o", "gpt-4o", SONNET, aliases=("4o", "gpt-4o-2024-08-06"))
    e = pricing_table(price, V)
    assert e.fields == {"aliases": ["4o", "gpt-4o-2024-08-06"]} and not e.added
    assert 'aliases = ["4o", "gpt-4o-2024-08-06"]' in render([e], V)
