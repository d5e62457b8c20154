"""Router maths (upstream kei-model-router, spec §4): posterior, kernel, complexity,
the decision, escalation and calibration, with every number the spec pins."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.domain.agents.dna import build_dna
from kei.domain.agents.money import price_micro_cents
from kei.domain.catalog.catalog import Catalog
from kei.domain.routing.calibrate import GRID, Calibration, Observation, calibrate
from kei.domain.routing.complexity import Complexity, Tier, estimate, tier_of
from kei.domain.routing.escalation import (
    MAX_ESCALATION_DEPTH,
    AtTop,
    Next,
    NotFound,
    Retry,
    Surrender,
    next_after_failure,
    next_model,
)
from kei.domain.routing.kernel import KernelWeights, similarity, smoothed
from kei.domain.routing.posterior import Beta, z_for
from kei.domain.routing.select import Decision, DecisionInput, select
from kei.errors import InputError

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"
# Spec §4.1: upstream's hardcoded µ¢ per million tokens (input, output).
UPSTREAM_RATES = {HAIKU: (100_000_000, 500_000_000), SONNET: (300_000_000, 1_500_000_000),
                  OPUS: (500_000_000, 2_500_000_000)}  # fmt: skip

DNA = "edit-local::NG-FW::5435F821::AC73A6A3-b3d36aa6"
TC = "edit-local::NG-FW::5435F821::AC73A6A3"


def upstream_price(model: str, tokens_in: int, tokens_out: int) -> int:
    rate_in, rate_out = UPSTREAM_RATES[model]
    return price_micro_cents(tokens_in, tokens_out, rate_in, rate_out)


class Counts:
    """Evidence from a dict ``{(task_class, model): (n⁺, n⁻)}``."""

    def __init__(self, rows: Mapping[tuple[str, str], tuple[int, int]] | None = None) -> None:
        self.rows = dict(rows or {})

    def counts(self, task_class: str, model: str) -> tuple[int, int]:
        return self.rows.get((task_class, model), (0, 0))

    def classes(self, model: str) -> Mapping[str, tuple[int, int]]:
        return {tc: c for (tc, m), c in self.rows.items() if m == model}


def route(rows: Mapping[tuple[str, str], tuple[int, int]] | None = None, **kw: Any) -> Decision:
    return select(DecisionInput(kw.pop("dna", DNA), **kw), Counts(rows), upstream_price)


# -- posterior (spec §4.2) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "z"),
    [(0.001, 2.326), (0.01, 2.326), (0.02, 1.645), (0.05, 1.645), (0.10, 1.282),
     (0.15, 0.842), (0.20, 0.842), (0.21, 0.0), (0.5, 0.0)],
)  # fmt: skip
def test_z_table(delta: float, z: float) -> None:
    assert z_for(delta) == z


def test_prior_is_uniform_and_not_trusted() -> None:
    prior = Beta.prior()
    assert (prior.alpha, prior.beta, prior.n) == (1.0, 1.0, 0)
    assert prior.mean == 0.5
    assert prior.variance == pytest.approx(1 / 12)
    assert prior.lower_bound(0.10) == pytest.approx(0.130, abs=5e-4)
    assert prior.lower_bound(0.10) < 0.30


@pytest.mark.parametrize(("k", "lb"), [(5, 0.699), (6, 0.734)])
def test_clean_successes_needed_to_clear_070(k: int, lb: float) -> None:
    post = Beta.from_counts(k, 0)
    assert round(post.lower_bound(0.10), 3) == lb
    assert (post.lower_bound(0.10) >= 0.70) is (k == 6)


def test_hundred_successes_concentrate_near_one() -> None:
    post = Beta.prior()
    for _ in range(100):
        post = post.observe(True)
    assert post == Beta.from_counts(100, 0)
    assert post.lower_bound(0.10) > 0.95


def test_from_counts_and_observe() -> None:
    # An escalated success is a failure for first-pass quality (the caller's rule): α=1, β=2.
    assert Beta.from_counts(0, 1) == Beta(1.0, 2.0, 1)
    assert Beta.from_counts(2, 1).mean == pytest.approx(0.6)
    assert Beta.prior().observe(False).observe(False).mean < 0.5
    assert Beta.prior().observe(True).n == 1


def test_large_delta_bound_is_the_mean() -> None:
    post = Beta.from_counts(3, 1)
    assert post.lower_bound(0.5) == post.mean


@pytest.mark.parametrize(("plus", "minus"), [(-1, 0), (0, -1), (True, 0), (1.0, 0)])
def test_bad_counts_are_refused(plus: Any, minus: Any) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        Beta.from_counts(plus, minus)


def test_beta_parameters_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        Beta(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="finite"):
        Beta(math.inf, 1.0, 0)


def test_sample_is_reproducible_from_a_seed() -> None:
    post = Beta.from_counts(4, 2)
    draws = [post.sample(random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    assert 0.0 <= draws[0] <= 1.0


counts = st.integers(min_value=0, max_value=1_000_000)
deltas = st.floats(min_value=0.0, max_value=1.0)


@given(counts, counts, deltas)
def test_lower_bound_in_unit_interval_and_below_mean(plus: int, minus: int, delta: float) -> None:
    post = Beta.from_counts(plus, minus)
    assert 0.0 <= post.lower_bound(delta) <= post.mean <= 1.0


@given(counts, counts)
def test_a_success_never_lowers_the_mean(plus: int, minus: int) -> None:
    post = Beta.from_counts(plus, minus)
    assert post.observe(True).mean >= post.mean
    assert post.observe(False).mean <= post.mean


# -- kernel (spec §4.3) -----------------------------------------------------------------------


def dna(role: str = "edit-local", caps: str = "NG-FW", scope: str = "5435F821",
        body: str = "AC73A6A3", nonce: str = "b3d36aa6") -> str:  # fmt: skip
    return f"{role}::{caps}::{scope}::{body}-{nonce}"


def test_identical_dna_scores_one() -> None:
    assert similarity(DNA, DNA) == 1.0
    assert similarity(TC, TC) == 1.0
    built = str(build_dna("code-implementer-rust", ["?"], "scope", "prompt", b"\x01\x02\x03\x04"))
    assert similarity(built, built) == 1.0


def test_different_role_keeps_the_other_terms() -> None:
    assert similarity(dna(role="role-a"), dna(role="role-b")) == pytest.approx(0.60)


def test_caps_partial_overlap() -> None:
    a = dna(caps="a-b-c", body="B0D11234", nonce="00000000")
    b = dna(caps="a-b-d", body="B0D15678", nonce="00000000")
    # 0.40 + 0.25·2/4 + 0.25 + 0.10·Jaccard(bigrams of "B0D11234-00000000", "B0D15678-00000000")
    expected = 0.40 + 0.25 * 0.5 + 0.25 + 0.10 * (5 / 15)
    assert similarity(a, b) == pytest.approx(expected)
    assert similarity(a, b) == pytest.approx(0.80, abs=0.01)
    tc_a, tc_b = a[:-9], b[:-9]  # task classes: bodies alone, 3 of 11 bigrams shared
    assert similarity(tc_a, tc_b) == pytest.approx(0.40 + 0.125 + 0.25 + 0.10 * 3 / 11)


def test_dissimilar_pair_scores_low() -> None:
    a = dna("role-x", "FOO-BAR", "DEADBEEF", "AAAA1111")
    b = dna("role-y", "QUX-ZAP", "CAFEBABE", "FFFF8888", nonce="c0ffee00")
    assert similarity(a, b) < 0.10


def test_missing_segments_and_edge_tokens() -> None:
    assert similarity("r", "r") == 0.40  # only the role segment exists in both
    assert similarity("r::?", "r::?") == 0.65  # "?" is one token
    assert similarity("r::--", "r::-") == 0.65  # both empty after dropping empty tokens
    assert similarity("::a::s", "::a::s") == 0.50  # an empty role counts as absent
    assert similarity("r::a::s::x", "r::a::s::x") == 1.0  # short bodies: equal scores 1
    assert similarity("r::a::s::x", "r::a::s::y") == pytest.approx(0.90)
    assert similarity("r::a::s::b", "r::a::s") == 0.90  # body absent from one side


def test_weights_change_the_terms() -> None:
    w = KernelWeights(role=1.0, caps=0.0, scope=0.0, body=0.0)
    assert similarity(dna(), dna(caps="XX"), w) == 1.0
    assert similarity(dna(role="a"), dna(role="b"), w) == 0.0


def test_weights_round_trip_through_event_data() -> None:
    w = KernelWeights(0.55, 0.15, 0.05, 0.0)
    assert w.to_dict() == {"role": 0.55, "caps": 0.15, "scope": 0.05, "body": 0.0}
    assert KernelWeights.from_dict(w.to_dict()) == w
    assert KernelWeights() == KernelWeights(0.40, 0.25, 0.25, 0.10)
    with pytest.raises(ValueError, match="exactly the keys"):
        KernelWeights.from_dict({"role": 1.0})
    with pytest.raises(ValueError, match="must be a number"):
        KernelWeights.from_dict({"role": "1", "caps": 0, "scope": 0, "body": 0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        KernelWeights(role=-0.1)


hex8 = st.text("0123456789ABCDEF", min_size=8, max_size=8)
dnas = st.builds(
    dna,
    st.sampled_from(["edit-local", "critic", "Explore", "r"]),
    st.sampled_from(["?", "NG", "NG-FW", "A-B-C", "FW-ZZ"]),
    st.sampled_from(["5435F821", "00000000"]),
    hex8,
    hex8.map(str.lower),
)
texts = st.one_of(dnas, st.text(alphabet=":-ab?", max_size=12))
weights = st.builds(KernelWeights, *[st.floats(0.0, 1.0)] * 4)


@given(texts, texts, weights)
def test_similarity_is_symmetric_and_bounded(a: str, b: str, w: KernelWeights) -> None:
    assert similarity(a, b, w) == similarity(b, a, w)
    assert 0.0 <= similarity(a, b, w) <= 1.0


@given(dnas)
def test_a_valid_dna_is_fully_similar_to_itself(text: str) -> None:
    assert similarity(text, text) == 1.0
    assert similarity(text[:-9], text[:-9]) == 1.0


def test_smoothing_borrows_from_similar_classes() -> None:
    target = dna(body="11111111")[:-9]
    near = dna(body="22222222")[:-9]  # same role, caps, scope: 0.90
    far = dna("other", "ZZ", "00000000", "ABCDEF01")[:-9]  # nothing shared: 0
    post = smoothed(target, {target: (50, 0), near: (10, 2), far: (100, 0), "": (7, 7)})
    assert post.alpha == pytest.approx(1 + 0.9 * 10)
    assert post.beta == pytest.approx(1 + 0.9 * 2)
    assert post.n == 12  # unweighted, and only from classes that contributed
    assert smoothed(target, {}) == Beta.prior()


def test_smoothing_ignores_mapping_order() -> None:
    a, b, c = (dna(body=x)[:-9] for x in ("11111111", "22222222", "11112222"))
    rows = {b: (3, 1), c: (5, 2)}
    assert smoothed(a, rows) == smoothed(a, dict(reversed(rows.items())))


# -- complexity τ and tier (spec §4.6) --------------------------------------------------------

PAD = " " * 120  # lifts a prompt out of the short-prompt band without adding keywords


@pytest.mark.parametrize(
    ("prompt", "role", "tau", "features"),
    [
        ("", "", 0.40, ("short_prompt",)),
        ("hello" + PAD, "", 0.50, ()),
        ("Derive the PROOF" + PAD, "", 0.70, ("heavy_kw",)),  # once per category
        ("refactor and test" + PAD, "", 0.60, ("mid_kw",)),
        ("Where is the list" + PAD, "", 0.40, ("light_kw",)),
        ("hello" + PAD, "critic", 0.70, ("heavy_role",)),
        ("hello" + PAD, "Explore", 0.30, ("light_role",)),
        ("hello" + PAD, "explore", 0.50, ()),  # roles match exactly
        ("x" * 99, "", 0.40, ("short_prompt",)),
        ("x" * 100, "", 0.50, ()),
        ("x" * 800, "", 0.50, ()),
        ("x" * 801, "", 0.60, ("long_prompt",)),
        ("é" * 50, "", 0.50, ()),  # 100 bytes of UTF-8, 50 characters
    ],
)
def test_tau_terms(prompt: str, role: str, tau: float, features: tuple[str, ...]) -> None:
    c = estimate(prompt, role)
    assert c.tau == pytest.approx(tau)
    assert c.features == features


def test_tau_clamps_to_unit_interval() -> None:
    heavy = estimate("architect refactor " + "x" * 900, "kei-architect")
    assert heavy == Complexity(1.0, ("heavy_kw", "mid_kw", "heavy_role", "long_prompt"))
    light = estimate("find", "Explore")
    assert light == Complexity(0.10, ("light_kw", "light_role", "short_prompt"))
    assert estimate("", "Explore").tau == pytest.approx(0.20)


def test_upstream_complexity_examples() -> None:
    assert estimate("find files matching pattern", "Explore").tier is Tier.LOOKUP
    prompt = ("Architect a novel state-space derivation for the manifold-tangent proof of "
              "convergence in our spectral algorithm. The goal is to produce a theorem-backed "
              "asymptotic bound.")  # fmt: skip
    assert estimate(prompt, "physics-deriver").tier is Tier.ARCHITECTURE
    assert estimate("", "").tau == 0.40


@pytest.mark.parametrize(
    ("tau", "tier"),
    [(0.0, Tier.LOOKUP), (0.2999, Tier.LOOKUP), (0.30, Tier.MULTI_STEP),
     (0.6999, Tier.MULTI_STEP), (0.70, Tier.ARCHITECTURE), (1.0, Tier.ARCHITECTURE)],
)  # fmt: skip
def test_tier_boundaries(tau: float, tier: Tier) -> None:
    assert tier_of(tau) is tier


# -- select (spec §4.4) -------------------------------------------------------------------------


def test_default_token_costs_with_upstream_rates() -> None:
    assert [upstream_price(m, 4000, 1500) for m in (HAIKU, SONNET, OPUS)] == [
        1_150_000,
        3_450_000,
        5_750_000,
    ]


def test_no_data_goes_to_the_top_tier() -> None:
    d = route(prompt="find files", dna=dna("Explore", "?", "ABCD1234", "DEADBEEF", "cafef00d"))
    assert (d.model, d.reason, d.lower_bound, d.n) == (OPUS, "no_feasible", 0.0, 0)
    assert d.expected_cost_micro_cents == 5_750_000
    assert [c.model for c in d.candidates] == [HAIKU, SONNET, OPUS]
    assert all(c.smoothed and not c.feasible and c.sample is None for c in d.candidates)
    assert [c.expected_cost_micro_cents for c in d.candidates] == [1_150_000, 3_450_000, 5_750_000]


def test_pinned_short_circuits() -> None:
    d = route({(TC, OPUS): (30, 0)}, pinned=HAIKU, prompt="anything")
    assert (d.model, d.reason, d.lower_bound, d.n, d.candidates) == (HAIKU, "pinned", 1.0, 0, ())
    assert d.expected_cost_micro_cents == 1_150_000
    assert d.task_class == TC


def test_thirty_haiku_successes_route_to_haiku() -> None:
    d = route({(TC, HAIKU): (30, 0)}, prompt="do the thing")
    assert (d.model, d.reason, d.n) == (HAIKU, "argmin_cost_feasible", 30)
    assert d.lower_bound > 0.70
    assert d.expected_cost_micro_cents == 1_150_000
    haiku = d.candidates[0]
    assert (haiku.alpha, haiku.beta, haiku.n, haiku.smoothed, haiku.feasible) == (
        31.0, 1.0, 30, False, True)  # fmt: skip


def test_cheapest_feasible_wins_not_the_best() -> None:
    d = route({(TC, HAIKU): (8, 3), (TC, SONNET): (40, 0), (TC, OPUS): (40, 0)})
    assert d.model == SONNET
    assert [c.feasible for c in d.candidates] == [False, True, True]
    assert d.lower_bound == d.candidates[1].lower_bound


def test_equal_costs_keep_ladder_order() -> None:
    d = select(DecisionInput(DNA), Counts({(TC, m): (40, 0) for m in (HAIKU, SONNET, OPUS)}),
               lambda m, i, o: 7)  # fmt: skip
    assert d.model == HAIKU


def test_unseen_class_borrows_from_neighbours() -> None:
    neighbour = dna(body="0000FFFF")[:-9]  # same role, caps and scope: similarity ≥ 0.90
    d = route({(neighbour, HAIKU): (40, 0)})
    assert d.model == HAIKU
    haiku = d.candidates[0]
    assert haiku.smoothed and haiku.n == 40 and haiku.alpha > 36


def test_empty_or_malformed_dna_falls_back() -> None:
    for text in ("", "not a dna", "tc1-deadbeef"):
        d = route({(TC, HAIKU): (30, 0)}, dna=text, fallback=SONNET)
        assert (d.model, d.reason, d.task_class, d.candidates) == (SONNET, "empty_dna", None, ())


def test_decision_reports_complexity_and_tier() -> None:
    d = route(prompt="architect the thing", dna=dna(role="kei-architect"))
    assert d.complexity == estimate("architect the thing", "kei-architect")
    assert d.tier is Tier.ARCHITECTURE and d.task_class == dna(role="kei-architect")[:-9]
    assert (d.policy, d.seed) == ("bound", None)


def test_threshold_and_delta_are_respected() -> None:
    rows = {(TC, HAIKU): (6, 0)}
    assert route(rows).model == HAIKU  # 0.734 ≥ 0.70
    assert route(rows, q_threshold=0.75).model == OPUS
    assert route(rows, delta=0.01).model == OPUS  # z 2.326 lowers the bound


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"policy": "greedy"}, "unknown routing policy"), ({"q_threshold": 1.5}, "between 0 and 1"),
     ({"delta": math.nan}, "between 0 and 1"), ({"tokens_in": -1}, "non-negative"),
     ({"tokens_out": 1.5}, "non-negative"), ({"ladder": ()}, "distinct"),
     ({"ladder": (HAIKU, HAIKU)}, "distinct")],
)  # fmt: skip
def test_bad_inputs_are_refused(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        DecisionInput(DNA, **kw)


def test_thompson_needs_a_seed() -> None:
    with pytest.raises(ValueError, match="needs a seed"):
        DecisionInput(DNA, policy="thompson")


def test_thompson_is_reproducible_and_explorative() -> None:
    rows = {(TC, HAIKU): (3, 1), (TC, SONNET): (5, 1), (TC, OPUS): (6, 0)}
    first = route(rows, policy="thompson", seed=42)
    assert first == route(rows, policy="thompson", seed=42)
    assert first.reason in ("thompson_cheapest_feasible", "no_feasible")
    assert all(c.sample is not None for c in first.candidates)
    rng = random.Random(42)  # samples are drawn in ladder order from Random(seed)
    for c in first.candidates:
        assert c.sample == Beta(c.alpha, c.beta, c.n).sample(rng)
        assert c.feasible is (c.sample >= 0.70)
    chosen = {route(rows, policy="thompson", seed=seed).model for seed in range(40)}
    assert len(chosen) > 1  # different seeds explore different models


def test_thompson_winner_is_the_cheapest_feasible_sample() -> None:
    rows = {(TC, m): (200, 0) for m in (HAIKU, SONNET, OPUS)}
    d = route(rows, policy="thompson", seed=1)
    assert (d.model, d.reason, d.seed) == (HAIKU, "thompson_cheapest_feasible", 1)
    assert d.policy == "thompson"
    assert d.lower_bound == d.candidates[0].lower_bound


# -- escalation (spec §4.5) ---------------------------------------------------------------------

LADDER = (HAIKU, SONNET, OPUS)


@pytest.mark.parametrize(
    ("current", "depth", "failure", "expected"),
    [(HAIKU, 0, True, Retry(SONNET, 1)), (SONNET, 1, True, Retry(OPUS, 2)),
     (OPUS, 1, True, Surrender()), (HAIKU, 2, True, Surrender()),
     (HAIKU, 0, False, Surrender()), ("gpt-4o", 0, True, Surrender())],
)  # fmt: skip
def test_escalation_ladder(current: str, depth: int, failure: bool, expected: object) -> None:
    assert next_after_failure(LADDER, current, depth, failure) == expected
    assert MAX_ESCALATION_DEPTH == 2


def test_escalation_depth_must_be_a_count() -> None:
    with pytest.raises(ValueError, match="depth"):
        next_after_failure(LADDER, HAIKU, -1, True)


def entry(mid: str, provider: str, out_rate: int, **fields: Any) -> dict[str, Any]:
    pricing = {"input_per_mtok_micro": 0, "output_per_mtok_micro": out_rate,
               "status": "needs-verification", **fields.pop("pricing", {})}  # fmt: skip
    return {"id": mid, "provider": provider, "status": "active", "pricing": pricing, **fields}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.from_data({"models": [
        entry(OPUS, "anthropic", 2_500, aliases=["opus"]),
        entry(SONNET, "anthropic", 1_500, aliases=["sonnet"]),
        entry("claude-old", "anthropic", 2_000, status="deprecated"),
        entry(HAIKU, "anthropic", 500, aliases=["haiku", "claude-haiku-4-5-20251001"]),
        entry("gpt-4o", "openai", 1_000),
        entry("gpt-twin", "openai", 1_000),
        entry("img-a", "fal", 3, pricing={"unit": "image"}),
        entry("img-b", "fal", 5, pricing={"unit": "image"}),
        entry("vid-a", "fal", 4, pricing={"unit": "second"}),
    ]}, source="t.toml")  # fmt: skip


@pytest.mark.parametrize(
    ("current", "provider", "expected"),
    [(HAIKU, "anthropic", Next(SONNET)), (SONNET, "anthropic", Next(OPUS)),
     (OPUS, "anthropic", AtTop()), ("haiku", "anthropic", Next(SONNET)),
     ("claude-haiku-4-5-20251001", "anthropic", Next(SONNET)),
     ("sonnet", "anthropic", Next(OPUS)), ("does-not-exist", "anthropic", NotFound()),
     ("claude-old", "anthropic", NotFound()), (HAIKU, "openai", NotFound()),
     ("gpt-4o", "openai", Next("gpt-twin")), ("gpt-twin", "openai", AtTop()),
     ("img-a", "fal", Next("img-b")), ("vid-a", "fal", AtTop())],
)  # fmt: skip
def test_catalog_ladder(catalog: Catalog, current: str, provider: str, expected: object) -> None:
    assert next_model(catalog, current, provider) == expected


# -- calibrate (spec §4.8) ----------------------------------------------------------------------


def upstream_calibrate(rows: list[Observation], grid: tuple[KernelWeights, ...]) -> Calibration:
    """Upstream's loop, row by row, as a reference for the grouped maths."""

    def mse(w: KernelWeights) -> float:
        total = 0.0
        for i, t in enumerate(rows):
            a = b = 1.0
            for j, o in enumerate(rows):
                sim = similarity(t.task_class, o.task_class, w)
                if j == i or o.model != t.model or sim <= 0.0:
                    continue
                a, b = (a + sim, b) if o.success else (a, b + sim)
            total += (float(t.success) - a / (a + b)) ** 2
        return total / len(rows)

    base = mse(KernelWeights())
    best, best_mse = KernelWeights(), base
    for w in grid:
        if (m := mse(w)) < best_mse:
            best, best_mse = w, m
    return Calibration(best, best_mse, base, len(rows))


def test_grid_is_upstreams_180_points() -> None:
    assert len(GRID) == 180 == len(set(GRID))
    assert GRID[0] == KernelWeights(0.10, 0.05, 0.05, 0.0)
    assert GRID[1] == KernelWeights(0.10, 0.05, 0.05, 0.05)
    assert GRID[-1] == KernelWeights(0.70, 0.35, 0.25, 0.10)


def test_calibrate_needs_five_observations() -> None:
    rows = [Observation(TC, HAIKU, True)] * 4
    result = calibrate(rows)
    assert result.weights == KernelWeights() and result.evaluated == 4
    assert math.isnan(result.mse) and math.isnan(result.baseline_mse)
    assert calibrate([]).evaluated == 0


def test_calibrate_improves_or_matches_baseline() -> None:
    a = dna(role="role-a", body="B0D11200")[:-9]
    b = dna(role="role-b", body="B0D11200")[:-9]
    rows = [Observation(a, HAIKU, True)] * 15 + [Observation(b, HAIKU, False)] * 5
    result = calibrate(rows)
    assert result.evaluated == 20
    assert result.mse <= result.baseline_mse
    assert result.mse < result.baseline_mse  # role matters here, so a heavier role weight helps
    assert result.weights.role > KernelWeights().role
    reference = upstream_calibrate(rows, GRID)
    assert result.weights == reference.weights
    assert result.mse == pytest.approx(reference.mse)
    assert result.baseline_mse == pytest.approx(reference.baseline_mse)


def test_calibrate_keeps_defaults_on_ties() -> None:
    rows = [Observation(TC, HAIKU, True)] * 6  # one class: self-similarity 1 under both weightings
    heavy = KernelWeights(0.70, 0.35, 0.25, 0.10)  # sums to 1.4, clamped to 1
    result = calibrate(rows, grid=[heavy])
    assert result.mse == result.baseline_mse
    assert result.weights == KernelWeights()


small_tcs = st.sampled_from([dna(role=r, caps=c, body=b)[:-9] for r in ("a", "b")
                             for c in ("X", "X-Y") for b in ("11111111", "11112222")])  # fmt: skip
observations = st.lists(
    st.builds(Observation, small_tcs, st.sampled_from([HAIKU, SONNET]), st.booleans()),
    min_size=5, max_size=14,
)  # fmt: skip


@given(observations)
def test_grouped_calibration_matches_upstreams_loop(rows: list[Observation]) -> None:
    grid = GRID[::20]
    ours, theirs = calibrate(rows, grid), upstream_calibrate(rows, grid)
    assert ours.baseline_mse == pytest.approx(theirs.baseline_mse)
    assert ours.mse == pytest.approx(theirs.mse)
    assert ours.mse <= ours.baseline_mse
