"""``kei cost record|amend|report`` end to end on both stores: spec §1.6/§11 pins, catalog
pricing with the price entry stored, unverified prices marked, amendments counted once,
and refusals that leave the log unchanged.

Commands run in-process (``CliRunner``) against a real ledger made by ``kei init``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env
from cli_helpers import kei as kei_process
from kei.adapters.files.catalog import load_catalog
from kei.app.costs import CostService
from kei.app.ledger.ledger import Ledger
from kei.domain.agents.money import display_cents
from kei.domain.catalog.catalog import Catalog

Kei = Callable[..., Result]

USER_CATALOG = """
[[models]]
id = "house-llm"
provider = "local"
status = "active"

[models.pricing]
input_per_mtok_micro = {rate}
output_per_mtok_micro = 2000000
status = "needs-verification"
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def kei(store_url: str, home: Path) -> Kei:
    env = cli_env(home, store_url)

    def run(*args: str, code: int | None = 0) -> Result:
        result = CliRunner().invoke(app_(), list(args), env=env)
        if code is not None:
            assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    run("init")
    run("agent", "fork", "a1", "agent/a1")
    run("agent", "fork", "a2", "agent/a2")
    return run


def app_() -> Any:
    from kei.adapters.cli.app import app

    return app


def count(url: str) -> int:
    with Ledger.open(url) as ledger:
        return ledger.store.count()


def payload(url: str, stream: str, version: int) -> dict[str, Any]:
    with Ledger.open(url) as ledger:
        found = [e for e in ledger.read_stream(stream) if e.version == version]
    assert len(found) == 1
    event = found[0]
    return {"type": event.type, **event.payload_data()}


def report(kei: Kei, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kei("cost", "report", "--json", *args).stdout)
    return out


def test_costs_are_additive_and_exact(kei: Kei) -> None:
    """§11: 100 + 250 + 75 = 425 via the CLI; the last answer carries the total."""
    lines = [kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
                 "--cents", str(c), "--json").stdout for c in (100, 250, 75)]  # fmt: skip
    last = json.loads(lines[-1])
    assert last["ok"] is True and last["agent_id"] == "a1"
    assert last["total_micro_cents"] == 425_000_000 and last["total_usd"] == "4.25"
    assert [json.loads(x)["event"] for x in lines] == ["agent/a1:2", "agent/a1:3", "agent/a1:4"]
    kei("cost", "record", "a2", "--provider", "p", "--model", "m", "--micro-cents", "499999")
    got = report(kei)
    assert [(r["agent"], r["micro_cents"], r["usd"]) for r in got["rows"]] == [
        ("a1", 425_000_000, "4.25"),
        ("a2", 499_999, "0.00499999"),
    ]
    assert got["total_micro_cents"] == 425_499_999 and got["total_usd"] == "4.25499999"
    text = kei("cost", "report").stdout.splitlines()
    assert text[0] == "agent\tevents\tusd\tmicro_cents\tprice"
    assert text[1:] == [
        "a1\t3\t$4.25\t425000000\tok",
        "a2\t1\t$0.00\t499999\tok",
        "TOTAL\t4\t$4.25\t425499999\tok",
    ]


def test_display_cents_pins() -> None:
    assert [display_cents(m) for m in (499_999, 500_000, 1_500_000)] == [0, 1, 2]


def test_catalog_prices_tokens_and_stores_the_entry(kei: Kei, store_url: str, home: Path) -> None:
    done = kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
               "--tokens-in", "100000", "--tokens-out", "50000", "--cache-read-tokens", "7",
               "--json")  # fmt: skip
    # 99,993 uncached input at $3/Mtok + 7 cache reads at $0.30 + 50,000 output at $15
    assert json.loads(done.stdout)["micro_cents"] == 29_997_900 + 210 + 75_000_000
    stored = payload(store_url, "agent/a1", 2)
    model = load_catalog(home).get("claude-sonnet-4-6")
    assert stored["price_entry_id"] == "claude-sonnet-4-6"
    assert stored["price_entry_hash"] == model.price_digest
    assert stored["usage"]["cache_read_tokens"] == 7
    assert stored["usage"].get("reasoning_tokens") is None  # unknown stays unknown
    assert report(kei, "--by", "provider")["rows"][0]["unverified_events"] == 0


def test_unverified_prices_are_marked(kei: Kei, home: Path) -> None:
    (home / "models.toml").write_text(USER_CATALOG.format(rate=1_000_000), encoding="utf-8")
    kei("cost", "record", "a1", "--provider", "local", "--model", "house-llm",
        "--tokens-in", "1000000", "--tokens-out", "0")  # fmt: skip
    kei("cost", "record", "a1", "--provider", "anthropic", "--model", "haiku",
        "--tokens-in", "10", "--tokens-out", "10")  # fmt: skip
    got = report(kei, "--by", "model")
    rows = {r["model"]: r for r in got["rows"]}
    assert rows["house-llm"]["micro_cents"] == 1_000_000
    assert rows["house-llm"]["unverified_events"] == 1
    assert "haiku" not in rows  # an alias counts under its catalog model
    assert rows["claude-haiku-4-5"]["unverified_events"] == 0
    assert got["unverified"] == 1
    assert (
        "house-llm\t1\t$0.01\t1000000\tUNVERIFIED (1 of 1)"
        in kei("cost", "report", "--by", "model").stdout
    )
    assert "TOTAL\t2\t" in kei("cost", "report").stdout
    assert "UNVERIFIED (1 of 2)" in kei("cost", "report").stdout


def test_a_changed_catalog_entry_no_longer_vouches(kei: Kei, home: Path) -> None:
    verified = USER_CATALOG.replace('"needs-verification"', '"verified"\nsource_url = "https://x"'
                                    '\nverified_at = "2026-01-01"')  # fmt: skip
    (home / "models.toml").write_text(verified.format(rate=1), encoding="utf-8")
    kei("cost", "record", "a1", "--provider", "local", "--model", "house-llm",
        "--tokens-in", "1", "--tokens-out", "1")  # fmt: skip
    assert report(kei)["unverified"] == 0
    (home / "models.toml").write_text(verified.format(rate=2), encoding="utf-8")
    assert report(kei)["unverified"] == 1


def test_amend_replaces_an_amount_exactly_once(kei: Kei, store_url: str) -> None:
    for c in ("100", "200"):
        kei("cost", "record", "a1", "--provider", "p", "--model", "m", "--cents", c)
    fixed = kei("cost", "amend", "agent/a1:2", "--cents", "50", "--reason", "retry", "--json")
    line = json.loads(fixed.stdout)
    assert line["event"] == "agent/a1:4" and line["total_usd"] == "2.50"
    amended = payload(store_url, "agent/a1", 4)
    assert amended["type"] == "cost.amended" and amended["supersedes_version"] == 2
    assert amended["provider"] == "p" and amended["reason"] == "retry"
    assert report(kei)["total_micro_cents"] == 250_000_000
    before = count(store_url)
    again = kei("cost", "amend", "agent/a1:2", "--cents", "60", code=2)
    assert "already amended by agent/a1@4; amend that one instead" in again.stderr
    assert count(store_url) == before
    kei("cost", "amend", "agent/a1:4", "--cents", "1")  # the amendment itself
    got = report(kei, "--by", "day")
    assert got["total_micro_cents"] == 201_000_000 and got["rows"][0]["events"] == 2


def test_refused_commands_leave_the_log_unchanged(kei: Kei, store_url: str) -> None:
    kei("cost", "record", "a1", "--provider", "p", "--model", "m", "--cents", "1")
    before = count(store_url)
    cases: list[tuple[list[str], str]] = [
        (["record", "ghost", "--provider", "p", "--model", "m", "--cents", "1"],
         "no agent with id ghost"),
        (["record", "a1", "--provider", "p", "--model", "m", "--micro-cents", "-5"],
         "micro_cents must be >= 0"),
        (["record", "a1", "--provider", "p", "--model", "m", "--cents", "1",
          "--micro-cents", "1"], "not both"),
        (["record", "a1", "--provider", "p", "--model", "m", "--tokens-in", "5"],
         "both --tokens-in and --tokens-out"),
        (["record", "a1", "--provider", "anthropic", "--model", "sonnet", "--tokens-in", "5",
          "--tokens-out", "5", "--cache-read-tokens", "6"], "input_tokens (5), which include"),
        (["record", "a1", "--provider", "openai", "--model", "sonnet", "--tokens-in", "5",
          "--tokens-out", "5"], "is a anthropic model in the catalog, not openai"),
        (["record", "a1", "--provider", "p", "--model", "m", "--tokens-in", "-1",
          "--cents", "1"], "input_tokens must be >= 0"),
        (["amend", "agent/a1:1", "--cents", "1"], "is agent.forked, not a cost event"),
        (["amend", "agent/a1:9", "--cents", "1"], "no event agent/a1:9"),
        (["amend", "a1", "--cents", "1"], "is not STREAM:VERSION"),
        (["amend", "agent/a1:2"], "give the new amount"),
    ]  # fmt: skip
    for args, message in cases:
        refused = kei("cost", *args, code=None)
        assert refused.exit_code != 0, args
        assert message in refused.stderr, (args, refused.stderr)
        assert refused.stderr.startswith("kei: error: "), refused.stderr
        assert "Traceback" not in refused.stderr
    assert count(store_url) == before


def test_since_and_empty_reports_and_rebuild(kei: Kei) -> None:
    assert kei("cost", "report").stdout == "(no costs)\n"
    assert report(kei)["rows"] == [] and report(kei)["total_micro_cents"] == 0
    kei("cost", "record", "a2", "--provider", "p", "--model", "m", "--cents", "3")
    kei("cost", "amend", "agent/a2:2", "--cents", "4")
    assert report(kei, "--since", "1h")["total_micro_cents"] == 4_000_000
    assert report(kei, "--since", "2999-01-01")["rows"] == []
    status = kei("projections", "status").stdout
    kei("projections", "rebuild", "costs")
    assert kei("projections", "status").stdout == status


def test_limit_shows_the_biggest_rows_and_totals_everything(
    kei: Kei, store_url: str, home: Path
) -> None:
    for agent, cents in (("a1", "5"), ("a2", "7"), ("a1", "1")):
        kei("cost", "record", agent, "--provider", "p", "--model", "m", "--cents", cents)
    kei("agent", "fork", "a3", "agent/a3")
    kei("cost", "record", "a3", "--provider", "p", "--model", "m", "--micro-cents", "500000")
    piped = kei_process(["cost", "report", "--limit", "2"], cli_env(home, store_url))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[1:] == [
        "a2\t1\t$0.07\t7000000\tok",
        "a1\t2\t$0.06\t6000000\tok",
        "TOTAL\t4\t$0.14\t13500000\tok",  # 13.5 cents: half up, over every row
    ]
    assert piped.stderr == "kei: the 2 biggest of 3 rows; TOTAL covers all\n"
    got = report(kei, "--limit", "1")
    assert [r["agent"] for r in got["rows"]] == ["a2"]
    assert (got["row_count"], got["limit"], got["total_micro_cents"]) == (3, 1, 13_500_000)
    assert report(kei, "--limit", "9")["rows"] == report(kei)["rows"]
    assert kei("cost", "report", "--limit", "3").stderr == ""  # nothing left out
    refused = kei_process(["cost", "report", "--limit", "0"], cli_env(home, store_url))
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("kei: error: ") and "--limit" in refused.stderr


def test_tree_and_report_agree_on_what_the_catalog_vouches_for(
    kei: Kei, store_url: str, home: Path
) -> None:
    """The tree's SQL rule (``vouched_entries``) and the report's (``vouched``) agree: a
    verified entry, a changed one, an unverified one, an empty catalog, a given amount."""
    verified = USER_CATALOG.replace('"needs-verification"', '"verified"\nsource_url = "https://x"'
                                    '\nverified_at = "2026-01-01"')  # fmt: skip
    (home / "models.toml").write_text(verified.format(rate=1), encoding="utf-8")
    kei("agent", "fork", "kid", "agent/kid", "--parent", "a1")
    for agent, model in (("a1", "house-llm"), ("kid", "haiku"), ("kid", "house-llm")):
        provider = "local" if model == "house-llm" else "anthropic"
        kei("cost", "record", agent, "--provider", provider, "--model", model,
            "--tokens-in", "1", "--tokens-out", "1")  # fmt: skip
    kei("cost", "record", "kid", "--provider", "p", "--model", "m", "--cents", "1")

    def both(catalog: Catalog) -> tuple[list[int], list[int]]:
        with Ledger.open(store_url) as ledger, CostService(ledger) as service:
            tree = [n.cost.unverified for n in service.tree("a1", catalog)]
            rows = {r.key: r.unverified for r in service.report("agent", catalog).rows}
        return tree, [rows["a1"], rows["kid"]]

    assert both(load_catalog(home)) == ([0, 0], [0, 0])
    (home / "models.toml").write_text(verified.format(rate=2), encoding="utf-8")
    assert both(load_catalog(home)) == ([1, 1], [1, 1])
    assert both(Catalog(())) == ([1, 2], [1, 2])
    tree = json.loads(kei("agent", "tree", "a1", "--json").stdout.splitlines()[1])
    assert (tree["id"], tree["unverified_events"]) == ("kid", 1)


def test_record_prices_every_tier_and_the_log_reproduces_it(
    kei: Kei, store_url: str, home: Path
) -> None:
    """Opus: 1,000 uncached input, 20,000 written for 5 minutes, 10,000 for an hour,
    100,000 read, 2,000 output; the stored usage and entry price it again exactly."""
    done = kei("cost", "record", "a1", "--provider", "anthropic", "--model", "opus",
               "--tokens-in", "131000", "--tokens-out", "2000", "--cache-read-tokens", "100000",
               "--cache-write-5m-tokens", "20000", "--cache-write-1h-tokens", "10000",
               "--json")  # fmt: skip
    micro = 500_000 + 12_500_000 + 10_000_000 + 5_000_000 + 5_000_000
    assert json.loads(done.stdout)["micro_cents"] == micro
    stored = payload(store_url, "agent/a1", 2)
    assert stored["usage"]["cache_write_tokens"] == 30_000
    assert stored["usage"]["cache_write_1h_tokens"] == 10_000
    assert stored["unpriced"] is False
    catalog = load_catalog(home)
    entry = catalog.get(stored["price_entry_id"])
    assert entry.price_digest == stored["price_entry_hash"]
    from kei.domain.events import TokenUsage

    usage = TokenUsage(**stored["usage"])
    assert catalog.quote(entry.id, usage).micro_cents == stored["micro_cents"] == micro


def test_the_issues_example_is_279_thousandths_of_a_dollar(kei: Kei) -> None:
    done = kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
               "--tokens-in", "120000", "--tokens-out", "9000", "--cache-read-tokens", "80000",
               "--json")  # fmt: skip
    assert json.loads(done.stdout)["usd"] == "0.279"


def test_cache_write_flags_must_agree(kei: Kei, store_url: str) -> None:
    before = count(store_url)
    refused = kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
                  "--tokens-in", "100", "--tokens-out", "1", "--cache-write-tokens", "30",
                  "--cache-write-5m-tokens", "10", "--cache-write-1h-tokens", "10", code=2)  # fmt: skip
    assert "is not --cache-write-tokens (30)" in refused.stderr
    assert count(store_url) == before
    kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
        "--tokens-in", "100", "--tokens-out", "1", "--cache-write-tokens", "30",
        "--cache-write-5m-tokens", "10")  # fmt: skip
    usage = payload(store_url, "agent/a1", 2)["usage"]
    assert (usage["cache_write_tokens"], usage["cache_write_1h_tokens"]) == (30, 20)


def test_a_model_without_a_price_is_recorded_unpriced(kei: Kei, store_url: str) -> None:
    done = kei("cost", "record", "a1", "--provider", "p", "--model", "nope",
               "--tokens-in", "5", "--tokens-out", "5", "--json")  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["unpriced"] is True and answer["micro_cents"] is None
    assert answer["usd"] is None
    assert "kei: no price for 'nope'; recorded as unpriced. Add it with" in done.stderr
    stored = payload(store_url, "agent/a1", 2)
    assert stored["unpriced"] is True and stored["micro_cents"] == 0
    assert stored.get("price_entry_id") is None
    assert stored["usage"]["input_tokens"] == 5
    plain = kei("cost", "record", "a1", "--provider", "p", "--model", "nope",
                "--tokens-in", "1", "--tokens-out", "1")  # fmt: skip
    assert "agent/a1:3: unpriced;" in plain.stderr


def test_amend_takes_the_tier_counts(kei: Kei, store_url: str) -> None:
    kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
        "--tokens-in", "120000", "--tokens-out", "9000")  # fmt: skip
    fixed = kei("cost", "amend", "agent/a1:2", "--tokens-in", "120000", "--tokens-out", "9000",
                "--cache-read-tokens", "80000", "--json")  # fmt: skip
    assert json.loads(fixed.stdout)["micro_cents"] == 27_900_000
    amended = payload(store_url, "agent/a1", 3)
    assert amended["usage"]["cache_read_tokens"] == 80_000
    assert amended["price_entry_id"] == "claude-sonnet-4-6"


def test_record_speed_fast_prices_the_fast_table_or_marks_standard_rates(
    kei: Kei, store_url: str
) -> None:
    done = kei("cost", "record", "a1", "--provider", "anthropic", "--model", "opus",
               "--tokens-in", "100", "--tokens-out", "1000", "--speed", "fast", "--json")  # fmt: skip
    answer = json.loads(done.stdout)
    assert (answer["micro_cents"], answer["speed"], answer["speed_unpriced"]) == (
        15_300_000, "fast", False)  # fmt: skip
    stored = payload(store_url, "agent/a1", 2)
    assert (stored["speed"], stored["speed_unpriced"]) == ("fast", False)
    slow = kei("cost", "record", "a1", "--provider", "anthropic", "--model", "sonnet",
               "--tokens-in", "100", "--tokens-out", "1000", "--speed", "fast")  # fmt: skip
    assert "kei: no fast price for 'claude-sonnet-4-6'; recorded at standard rates" in slow.stderr
    stored = payload(store_url, "agent/a1", 3)
    assert (stored["micro_cents"], stored["speed"], stored["speed_unpriced"]) == (
        1_530_000, "fast", True)  # fmt: skip
    kept = kei("cost", "amend", "agent/a1:2", "--tokens-in", "100", "--tokens-out", "10", "--json")
    assert json.loads(kept.stdout)["speed"] == "fast"  # the amended call's speed, kept


def test_report_names_the_costs_priced_at_standard_rates_for_their_speed(
    kei: Kei, store_url: str
) -> None:
    """A fast call on an entry without fast rates is counted at standard rates: the
    report says how many and of which models, rather than leaving it unsaid."""
    for model in ("sonnet", "claude-sonnet-4-6", "opus"):
        kei("cost", "record", "a1", "--provider", "anthropic", "--model", model,
            "--tokens-in", "100", "--tokens-out", "1000", "--speed", "fast")  # fmt: skip
    report = kei("cost", "report", "--by", "model", "--json")
    answer = json.loads(report.stdout)
    assert answer["speed_unpriced"] == {"events": 2, "models": {"claude-sonnet-4-6": 2}}
    rows = {r["model"]: r["speed_unpriced_events"] for r in answer["rows"]}
    assert rows == {"claude-sonnet-4-6": 2, "claude-opus-4-7": 0}
    assert "2 call(s) priced at standard rates" in report.stderr
    assert "claude-sonnet-4-6 (2)" in report.stderr
    text = kei("cost", "report", "--by", "model")
    assert "SPEED UNPRICED (2 of 2)" in text.stdout
    clean = kei("cost", "report", "--by", "agent", "--since", "2001-01-01", "--until", "2001-01-02")
    assert "speed_unpriced" not in clean.stderr
