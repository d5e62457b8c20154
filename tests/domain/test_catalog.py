"""The model catalog (upstream kei-model): shipped invariants, validation, resolve, price, chain."""

from __future__ import annotations

from typing import Any

import pytest

from kei.adapters.files.catalog import load_catalog
from kei.domain.catalog.catalog import CORE_PROVIDERS, Catalog
from kei.errors import (
    CatalogError,
    FallbackCycleError,
    NoMatchError,
    UnknownFilterError,
    UnknownModelError,
)


def entry(mid: str, rate_in: int = 0, rate_out: int = 0, **fields: Any) -> dict[str, Any]:
    pricing = {"input_per_mtok_micro": rate_in, "output_per_mtok_micro": rate_out,
               "status": "needs-verification"}  # fmt: skip
    pricing.update(fields.pop("pricing", {}))
    return {"id": mid, "provider": "local", "status": "active", "pricing": pricing, **fields}


def catalog(*entries: dict[str, Any], **selectors: str) -> Catalog:
    return Catalog.from_data({"models": list(entries), "selectors": selectors}, source="t.toml")


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog(None)


# --- the shipped catalog: upstream's test-checked invariants ------------------------------


def test_shipped_catalog_has_upstreams_22_models_all_active(shipped: Catalog) -> None:
    assert len(shipped.models) == 22
    assert all(m.status == "active" for m in shipped.models)
    assert {m.provider for m in shipped.models} >= set(CORE_PROVIDERS)
    assert sum(m.provider == "anthropic" for m in shipped.models) == 3


def test_shipped_prices_carry_their_evidence(shipped: Catalog) -> None:
    for m in shipped.models:
        assert m.pricing.source_url, m.id
        if m.pricing.status == "placeholder":
            assert (m.pricing.input_per_mtok_micro, m.pricing.output_per_mtok_micro) == (0, 0)
        if m.pricing.status == "verified":
            assert m.pricing.verified_at, m.id


def test_shipped_text_fallback_chain(shipped: Catalog) -> None:
    ids = [m.id for m in shipped.chain("opus").models]
    assert ids == ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5", "gpt-4o-mini",
                   "deepseek-chat", "llama-3-70b-local"]  # fmt: skip


@pytest.mark.parametrize(
    ("role", "caps", "expected"),
    [
        ("code-implementer", [], "claude-opus-4-7"),
        ("kei-critic", [], "claude-haiku-4-5"),
        ("edit-shared", [], "claude-opus-4-7"),
        ("kei-router-openai", [], "gpt-4o-mini"),  # no tag: the [selectors] default
        ("mid", ["vision"], "gpt-4o"),
    ],
)
def test_resolve_on_the_shipped_catalog(
    shipped: Catalog, role: str, caps: list[str], expected: str
) -> None:
    assert shipped.resolve(role, caps=caps).model.id == expected


def test_resolve_unknown_role_is_no_match(shipped: Catalog) -> None:
    with pytest.raises(NoMatchError, match=r"role=nobody, caps=\[code\], budget=none"):
        shipped.resolve("nobody", caps=["code"])


# --- pricing ------------------------------------------------------------------------------


def test_price_floors_each_side_like_upstream_estimate() -> None:
    cat = catalog(entry("m", 1000, 2000))
    assert cat.price("m", 100_000, 200_000).micro_cents == 500
    assert catalog(entry("one", 1)).price("one", 1_000_000, 0).micro_cents == 1


def test_price_by_alias_and_unknown_model() -> None:
    cat = catalog(entry("long-id", 7, aliases=["short"]))
    assert cat.price("short", 1_000_000, 0).model.id == "long-id"
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        cat.price("nope", 1, 1)


def test_price_digest_changes_with_the_price() -> None:
    a = catalog(entry("m", 1)).get("m").price_digest
    b = catalog(entry("m", 2)).get("m").price_digest
    assert a.startswith("sha256:") and a != b


def test_budget_picks_the_cheap_model() -> None:
    cat = catalog(entry("dear", 900_000, 900_000, role_tags=["r"]),
                  entry("cheap", 400_000, 400_000, role_tags=["r"]))  # fmt: skip
    assert cat.resolve("r", budget_micro=1000).model.id == "cheap"
    with pytest.raises(NoMatchError, match="budget=100"):
        cat.resolve("r", budget_micro=100)


def test_resolve_ties_break_by_rates_then_id() -> None:
    cat = catalog(entry("b", 5, role_tags=["r"]), entry("a", 5, role_tags=["r"]),
                  entry("c", 5, 0, role_tags=["r"], status="deprecated"))  # fmt: skip
    assert cat.resolve("r").model.id == "a"


def test_selector_default_skips_status_and_caps_as_upstream() -> None:
    cat = catalog(entry("old", status="deprecated"), critic="old")
    found = cat.resolve("critic", caps=["code"])
    assert found.model.id == "old" and "not checked" in found.reason


# --- fallback chains ----------------------------------------------------------------------


def test_cycle_in_fallback_chain_is_detected() -> None:
    cat = catalog(entry("a", fallback="b"), entry("b", fallback="c"), entry("c", fallback="a"))
    with pytest.raises(FallbackCycleError, match="cycle in fallback chain at a"):
        cat.chain("a")


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(FallbackCycleError, match="at a"):
        catalog(entry("a", fallback="a")).chain("a")


def test_unknown_intermediate_ends_the_chain_and_is_reported() -> None:
    walk = catalog(entry("a", fallback="ghost")).chain("a")
    assert [m.id for m in walk.models] == ["a"] and walk.dangling == "ghost"


def test_unknown_primary() -> None:
    with pytest.raises(UnknownModelError, match="unknown primary model_id: zz"):
        catalog(entry("a")).chain("zz")


# --- validation: every bad field is one line naming the model and the field --------------

BAD = [
    ("bad-provider", entry("m", provider="acme"), r"model 'm' field 'provider': expected one of"),
    ("bad-status", entry("m", status="gone"), "field 'status'"),
    ("bad-cap", entry("m", capabilities=["telepathy"]), "field 'capabilities'"),
    ("typo-field", entry("m", fallbak="x"), "unknown model field 'fallbak'"),
    ("float-rate", entry("m", pricing={"input_per_mtok_micro": 1.5}), r"field 'pricing.input_per_mtok_micro': expected an integer"),
    ("negative-rate", entry("m", 0, -1), "pricing.output_per_mtok_micro"),
    ("bool-rate", entry("m", True), "pricing.input_per_mtok_micro"),
    ("placeholder-not-zero", entry("m", 5, pricing={"status": "placeholder"}), "every rate 0"),
    ("verified-without-date",
     entry("m", 1, pricing={"status": "verified", "source_url": "https://x.test"}),
     "needs source_url and verified_at"),
    ("bad-date", entry("m", pricing={"verified_at": "yesterday"}), "pricing.verified_at"),
    ("http-url", entry("m", pricing={"source_url": "http://x.test"}), "pricing.source_url"),
    ("bad-unit", entry("m", pricing={"unit": "furlong"}), "pricing.unit"),
    ("missing-pricing", {"id": "m", "provider": "local", "status": "active"}, "'pricing': missing"),
    ("empty-id", entry(""), "'id': expected a non-empty string"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_entry_is_refused_with_one_line(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message) as info:
        catalog(bad)
    assert str(info.value).startswith("t.toml: ") and "\n" not in str(info.value)


def test_duplicate_id_alias_clash_and_dangling_selector_are_refused() -> None:
    with pytest.raises(CatalogError, match="'a' is listed twice"):
        catalog(entry("a"), entry("a"))
    with pytest.raises(CatalogError, match="'x' already names model 'a'"):
        catalog(entry("a", aliases=["x"]), entry("b", aliases=["x"]))
    with pytest.raises(CatalogError, match="selector 'r' names unknown model 'ghost'"):
        catalog(entry("a"), r="ghost")


def test_unknown_filter_values_are_errors() -> None:
    cat = catalog(entry("a"))
    for kwargs in ({"provider": "acme"}, {"status": "gone"}, {"caps": ["telepathy"]}):
        with pytest.raises(UnknownFilterError):
            cat.select(**kwargs)


# --- the user catalog overlays the shipped one --------------------------------------------


def test_overlay_changes_fields_and_adds_models() -> None:
    base = catalog(entry("a", 10, role_tags=["r"], notes="base"))
    user = base.overlay({"models": [{"id": "a", "notes": "mine"}, entry("b")]}, source="u.toml")
    assert user.get("a").notes == "mine" and user.get("a").role_tags == ("r",)
    assert user.get("a").pricing.input_per_mtok_micro == 10
    assert [m.id for m in user.models] == ["a", "b"]


def test_overlay_replaces_pricing_whole_so_verified_is_never_inherited() -> None:
    verified = {"status": "verified", "source_url": "https://x.test", "verified_at": "2026-01-02"}
    base = catalog(entry("a", 10, pricing=verified))
    with pytest.raises(CatalogError, match=r"u.toml: model 'a' field 'pricing.status'"):
        base.overlay({"models": [{"id": "a", "pricing": {"input_per_mtok_micro": 5,
                                                         "output_per_mtok_micro": 5}}]},
                     source="u.toml")  # fmt: skip
    new = {"input_per_mtok_micro": 5, "output_per_mtok_micro": 5, "status": "needs-verification"}
    user = base.overlay({"models": [{"id": "a", "pricing": new}]}, source="u.toml")
    assert not user.get("a").pricing.vouched and user.get("a").pricing.verified_at is None


def test_overlay_selectors_role_by_role() -> None:
    base = catalog(entry("a"), entry("b"), r1="a", r2="a")
    user = base.overlay({"selectors": {"r2": "b"}}, source="u.toml")
    assert dict(user.selectors) == {"r1": "a", "r2": "b"}


def test_providers_counts_core_providers_even_when_empty() -> None:
    cat = catalog(entry("a"), entry("b", status="deprecated"), entry("c", provider="fal"))
    counts = {c.name: (c.active_count, c.deprecated_count) for c in cat.providers()}
    assert counts["local"] == (1, 1) and counts["anthropic"] == (0, 0)
    assert counts["fal"] == (1, 0) and "google" not in counts


def test_generation_models_are_priced_per_unit_not_per_million() -> None:
    cat = catalog(entry("img", 0, 3_980_000, pricing={"unit": "image"}))
    assert cat.price("img", 0, 4).micro_cents == 15_920_000  # 4 x $0.0398


def test_a_dated_snapshot_names_its_model_only_where_the_entry_says_so() -> None:
    """``claude-sonnet-4-5-20250929`` (how Claude Code names the model) prices as
    ``claude-sonnet-4-5`` when that entry has ``dated_snapshots``; OpenAI re-priced a
    dated gpt-4o, so an entry without the flag never stands for its snapshots."""
    entry = {"provider": "anthropic", "status": "active",
             "pricing": {"input_per_mtok_micro": 300_000_000,
                         "output_per_mtok_micro": 0, "status": "needs-verification"}}  # fmt: skip
    claude = {"id": "claude-x", "dated_snapshots": True, "aliases": ["x"], **entry}
    cat = Catalog.from_data({"models": [claude, {"id": "gpt-y", **entry}]}, source="t.toml")
    assert cat.get("claude-x-20250929").id == "claude-x"
    assert cat.get("x-20250929").id == "claude-x"  # an alias's snapshot too
    for name in ("gpt-y-20250929", "claude-x-20251399", "claude-x-2025092", "claude-x20250929"):
        with pytest.raises(UnknownModelError):
            cat.get(name)
    with pytest.raises(CatalogError, match="'dated_snapshots': expected true or false"):
        Catalog.from_data({"models": [{"id": "z", "dated_snapshots": "yes", **entry}]}, source="t")
