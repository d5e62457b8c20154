"""``kei route`` and ``kei posterior`` end to end on both stores: the router learns from
recorded outcomes (upstream's six clean successes), every decision is re-derived from
the log by ``explain``, escalation follows the ladder, and refusals append nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from cli_helpers import cli_env, in_process
from kei.app.ledger.ledger import Ledger

DNA = "coder::rust-test::3F2A9C01::7B1E44D0-9a0c11fe"
OTHER = "critic::docs::00AA00AA::11BB11BB-22cc22cc"
Kei = Callable[..., Result]


@pytest.fixture
def kei(store_url: str, tmp_path: Path) -> Kei:
    run: Kei = in_process(cli_env(tmp_path / "home", store_url))
    run("init")
    return run


def decide(kei: Kei, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(kei("route", "select", "--json", *args).stdout)
    return data


def events(url: str) -> list[Any]:
    with Ledger.open(url) as ledger:
        return list(ledger.read())


def test_six_clean_successes_route_the_class_to_the_cheap_model(kei: Kei) -> None:
    first = decide(kei, "--dna", DNA)
    assert (first["model"], first["reason"]) == ("claude-opus-4-7", "no_feasible")
    for _ in range(6):
        pinned = decide(kei, "--dna", DNA, "--pin", "haiku")  # an alias, resolved
        assert pinned["model"] == "claude-haiku-4-5" and pinned["reason"] == "pinned"
        kei("route", "outcome", pinned["decision_id"], "--outcome", "functional")
    routed = decide(kei, "--dna", DNA)
    assert (routed["model"], routed["reason"], routed["n"]) == (
        "claude-haiku-4-5", "argmin_cost_feasible", 6)  # fmt: skip
    assert routed["lower_bound"] == pytest.approx(0.734, abs=5e-4)
    assert [c["model"] for c in routed["candidates"]] == [
        "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"]  # fmt: skip
    shown = [json.loads(line) for line in kei("posterior", "show", "--json").stdout.splitlines()]
    assert [(r["model"], r["alpha"], r["beta"], r["n"]) for r in shown] == [
        ("claude-haiku-4-5", 7, 1, 6)]  # fmt: skip
    other = decide(kei, "--dna", OTHER)  # another role: smoothing does not carry it
    assert other["model"] == "claude-opus-4-7"


def test_explain_re_derives_every_decision_as_of_its_position(kei: Kei) -> None:
    ids = []
    for i in range(4):
        d = decide(kei, "--dna", DNA, "--pin", "haiku")
        kei("route", "outcome", d["decision_id"], "--outcome", "functional" if i else "fail")
        ids.append(decide(kei, "--dna", DNA)["decision_id"])
        ids.append(decide(kei, "--dna", DNA, "--policy", "thompson")["decision_id"])
    for decision in ids:  # later outcomes do not change what an earlier decision saw
        found = json.loads(kei("route", "explain", decision, "--json").stdout)
        assert found["rederived"] and found["differences"] == [], found
    last = json.loads(kei("route", "explain", ids[-1], "--json").stdout)
    assert last["outcomes_before"] == 4 and last["recorded"]["seed"] is not None


def test_a_thompson_decision_is_repeatable_from_its_seed(kei: Kei) -> None:
    a = decide(kei, "--dna", DNA, "--policy", "thompson", "--seed", "42", "--dry-run")
    b = decide(kei, "--dna", DNA, "--policy", "thompson", "--seed", "42", "--dry-run")
    assert a["candidates"] == b["candidates"] and a["seed"] == 42


def test_escalation_climbs_two_steps_then_surrenders(kei: Kei, store_url: str) -> None:
    d = decide(kei, "--dna", DNA, "--pin", "claude-haiku-4-5")["decision_id"]
    assert "claude-sonnet-4-6 (depth 1)" in kei("route", "escalate", d).stdout
    assert "claude-opus-4-7 (depth 2)" in kei("route", "escalate", d).stdout
    assert "surrender" in kei("route", "escalate", d, code=1).stdout
    kei("route", "outcome", d, "--outcome", "functional")
    outcome = next(e for e in events(store_url) if e.type == "route.outcome").payload()
    assert (outcome.model, outcome.escalation_depth) == ("claude-opus-4-7", 2)
    shown = json.loads(kei("posterior", "show", "--json").stdout)
    assert (shown["alpha"], shown["beta"]) == (1, 2)  # a success after escalating is a failure
    refused = kei("route", "escalate", d, code=2)
    assert "already has an outcome" in refused.stderr


def test_dry_run_and_refusals_append_nothing(kei: Kei, store_url: str) -> None:
    d = decide(kei, "--dna", DNA)["decision_id"]
    before = len(events(store_url))
    dry = decide(kei, "--dna", DNA, "--dry-run")
    assert dry["event"] is None
    cases = [
        (("route", "select", "--dna", "coder::rust::nothex::7B1E44D0-9a0c11fe"), "DNA"),
        (("route", "select", "--dna", DNA, "--pin", "no-such-model"), "unknown model"),
        (("route", "outcome", "nope", "--outcome", "functional"), "no routing decision"),
        (("route", "calibrate", "--apply"), "at least 5"),
    ]
    for args, message in cases:
        result = kei(*args, code=None)
        assert result.exit_code != 0, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    kei("route", "outcome", d, "--outcome", "partial")
    twice = kei("route", "outcome", d, "--outcome", "partial", code=None)
    assert twice.exit_code != 0 and "already has an outcome" in twice.stderr
    assert len(events(store_url)) == before + 1  # only the first outcome


def test_upstream_names_of_a_model_count_as_that_model(kei: Kei) -> None:
    """Upstream's posterior saw two names per tier and its calibration every alias
    (spec §12.4); here every name the router knows resolves to one catalog id."""
    for name in ("haiku", "haiku-4.5", "claude-haiku-4-5-20251001", "claude-haiku-4-5"):
        d = decide(kei, "--dna", DNA, "--pin", name)
        kei("route", "outcome", d["decision_id"], "--outcome", "functional")
    shown = json.loads(kei("posterior", "show", "--json").stdout)
    assert (shown["model"], shown["n"]) == ("claude-haiku-4-5", 4)


def test_the_posteriors_rebuilt_from_the_log_are_the_ones_kept(kei: Kei) -> None:
    for i in range(5):
        d = decide(kei, "--dna", DNA if i % 2 else OTHER, "--pin", "sonnet")
        kei("route", "outcome", d["decision_id"], "--outcome", "functional" if i else "fail")
    status = [json.loads(x) for x in kei("projections", "status", "--json").stdout.splitlines()]
    kept = next(s for s in status if s["name"] == "posteriors")
    rebuilt = json.loads(kei("projections", "rebuild", "posteriors", "--json").stdout)
    assert rebuilt["name"] == "posteriors"
    assert kept["digest"] == rebuilt["digest"] and kept["position"] == rebuilt["position"]


def test_empty_dna_falls_back_as_upstream(kei: Kei) -> None:
    d = decide(kei, "--dna", "")
    assert (d["model"], d["reason"], d["task_class"]) == ("claude-opus-4-7", "empty_dna", None)


def test_applied_weights_are_used_by_later_decisions(kei: Kei) -> None:
    for i in range(6):
        d = decide(kei, "--dna", DNA if i % 2 else OTHER, "--pin", "haiku")
        kei("route", "outcome", d["decision_id"], "--outcome", "functional" if i % 3 else "fail")
    shown = json.loads(kei("route", "calibrate", "--json").stdout)
    assert shown["evaluated"] == 6 and shown["applied"] is None
    applied = json.loads(kei("route", "calibrate", "--apply", "--json").stdout)
    assert applied["applied"] == "route.weights:1"
    later = decide(kei, "--dna", DNA)
    assert later["weights_ref"] == "route.weights:1"
    assert later["weights"] == applied["weights"]
    explained = json.loads(kei("route", "explain", later["decision_id"], "--json").stdout)
    assert explained["rederived"]


def test_the_candidates_come_from_the_catalogs_router_table(kei: Kei, tmp_path: Path) -> None:
    """A user's ``[router]`` puts any provider's models on the ladder; escalation and
    explain follow the ladder the decision recorded."""
    (tmp_path / "home" / "models.toml").write_text(
        '[router]\nladder = ["gpt-4o-mini", "sonnet", "gpt-4o"]\nfallback = "gpt-4o"\n'
    )
    first = decide(kei, "--dna", DNA)
    assert (first["model"], first["reason"]) == ("gpt-4o", "no_feasible")
    assert [c["model"] for c in first["candidates"]] == [
        "gpt-4o-mini",
        "claude-sonnet-4-6",
        "gpt-4o",
    ]
    pinned = decide(kei, "--dna", DNA, "--pin", "gpt-4o-mini")["decision_id"]
    assert "claude-sonnet-4-6 (depth 1)" in kei("route", "escalate", pinned).stdout
    kei("route", "explain", first["decision_id"])  # re-derived from the recorded ladder: exit 0
    (tmp_path / "home" / "models.toml").write_text('[router]\nladder = ["ghost"]\n')
    refused = kei("route", "select", "--dna", DNA, code=2)
    assert "[router] names unknown model 'ghost'" in refused.stderr
