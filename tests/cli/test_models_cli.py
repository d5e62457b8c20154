"""``kei models``: output forms, the user catalog overlay, upstream's exit codes and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env, kei
from kei.adapters.cli.app import app

USER_CYCLE = """
[[models]]
id = "loop-a"
provider = "local"
status = "active"
fallback = "loop-b"
pricing = { input_per_mtok_micro = 0, output_per_mtok_micro = 0, status = "placeholder" }

[[models]]
id = "loop-b"
provider = "local"
status = "active"
fallback = "loop-a"
pricing = { input_per_mtok_micro = 0, output_per_mtok_micro = 0, status = "placeholder" }

[[models]]
id = "gpt-4o"
pricing = { input_per_mtok_micro = 1, output_per_mtok_micro = 2, status = "needs-verification" }
"""


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["models", *args], env=cli_env(home))


def lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_list_json_is_ndjson_with_price_marks(tmp_path: Path) -> None:
    result = run(tmp_path, "list", "--json")
    assert result.exit_code == 0, result.output
    rows = lines(result)
    assert len(rows) == 22
    flash = next(r for r in rows if r["id"] == "gemini-3-1-flash-image")
    assert flash["price_vouched"] is False
    assert str(flash["price_entry"]).startswith("sha256:")


def test_list_filters(tmp_path: Path) -> None:
    rows = lines(run(tmp_path, "list", "--provider", "openai", "--cap", "vision", "--json"))
    assert [r["id"] for r in rows] == ["gpt-4o"]
    rows = lines(run(tmp_path, "list", "--role", "kei-critic", "--status", "active", "--json"))
    assert [r["id"] for r in rows] == ["claude-haiku-4-5"]


def test_list_plain_marks_unverified_prices(tmp_path: Path) -> None:
    out = run(tmp_path, "list").stdout
    flash = next(line for line in out.splitlines() if line.startswith("gemini-3-1-flash-image"))
    assert "UNVERIFIED: needs-verification" in flash and "$0.0398 per image" in flash


def test_resolve_json_is_one_object(tmp_path: Path) -> None:
    result = run(tmp_path, "resolve", "--role", "kei-critic", "--json")
    (obj,) = lines(result)
    assert obj["model_id"] == "claude-haiku-4-5" and obj["provider"] == "anthropic"
    assert obj["price_vouched"] is True and "reason" in obj


def test_resolve_with_budget(tmp_path: Path) -> None:
    # 1k in + 1k out: haiku costs 600,000 µ¢, gpt-4o-mini 75,000, deepseek-chat 42,000
    result = run(tmp_path, "resolve", "--role", "cheap", "--budget-micro", "50000", "--json")
    assert lines(result)[0]["model_id"] == "llama-3-70b-local"


def test_price_matches_upstream_fields(tmp_path: Path) -> None:
    result = run(tmp_path, "price", "sonnet", "--input-tokens", "100000",
                 "--output-tokens", "50000", "--json")  # fmt: skip
    (obj,) = lines(result)
    assert obj["model_id"] == "claude-sonnet-4-6"
    assert obj["micro_cents"] == 105_000_000 and obj["usd"] == "1.05"
    assert obj["pricing_status"] == "verified"


def test_price_plain_says_when_the_price_is_not_vouched(tmp_path: Path) -> None:
    result = run(tmp_path, "price", "gemini-3-pro-image", "--input-tokens", "0",
                 "--output-tokens", "2")  # fmt: skip
    assert result.exit_code == 0
    assert "UNVERIFIED: needs-verification" in result.stdout and "2 x image" in result.stdout


def test_chain_and_providers(tmp_path: Path) -> None:
    rows = lines(run(tmp_path, "chain", "haiku", "--json"))
    assert [(r["step"], r["id"]) for r in rows] == [
        (1, "claude-haiku-4-5"), (2, "gpt-4o-mini"), (3, "deepseek-chat"),
        (4, "llama-3-70b-local"),
    ]  # fmt: skip
    counts = {r["name"]: r["active_count"] for r in lines(run(tmp_path, "providers", "--json"))}
    assert counts["anthropic"] == 3 and counts["kimi"] == 1


def test_user_catalog_overlays_and_its_cycle_exits_3(tmp_path: Path) -> None:
    (tmp_path / "models.toml").write_text(USER_CYCLE, encoding="utf-8")
    gpt = next(r for r in lines(run(tmp_path, "list", "--json")) if r["id"] == "gpt-4o")
    assert gpt["price_vouched"] is False and gpt["display_name"] == "GPT-4o"
    result = run(tmp_path, "chain", "loop-a")
    assert result.exit_code == 3
    assert result.stderr.strip() == "kei: error: cycle in fallback chain at loop-a"


def test_dangling_fallback_warns_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "models.toml").write_text(
        '[[models]]\nid = "gpt-4o"\nfallback = "gpt-9"\n', encoding="utf-8"
    )
    result = run(tmp_path, "chain", "gpt-4o", "--json")
    assert result.exit_code == 0 and len(lines(result)) == 1
    assert "fallback 'gpt-9' is not in the catalog" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["price", "nope", "--input-tokens", "1", "--output-tokens", "1"], 2,
         "unknown model 'nope'"),
        (["chain", "nope"], 2, "unknown primary model_id: nope"),
        (["resolve", "--role", "nobody"], 2, "no active model matches role=nobody"),
        (["list", "--provider", "acme"], 1, "unknown provider 'acme'"),
        (["list", "--cap", "telepathy"], 1, "unknown capability 'telepathy'"),
    ],
    ids=["unknown-model", "unknown-primary", "no-match", "bad-provider", "bad-cap"],
)  # fmt: skip
def test_errors_use_upstream_exit_codes(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = run(tmp_path, *args)
    assert result.exit_code == code
    assert result.stderr.startswith(f"kei: error: {message}")
    assert result.stdout == ""


def test_broken_user_catalog_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text("[[models]\n", encoding="utf-8")
    result = kei(["models", "list"], cli_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"kei: error: {path}: bad TOML")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    path.write_text('[[models]]\nid = "gpt-4o"\nstatus = "gone"\n', encoding="utf-8")
    result = kei(["models", "providers"], cli_env(tmp_path))
    assert result.returncode == 1
    assert f"{path}: model 'gpt-4o' field 'status': expected one of" in result.stderr


def test_price_shows_the_tier_breakdown(tmp_path: Path) -> None:
    """The issue's Sonnet example: 120,000 input of which 80,000 cache reads, 9,000 output."""
    args = ("price", "sonnet", "--input-tokens", "120000", "--output-tokens", "9000",
            "--cache-read-tokens", "80000")  # fmt: skip
    (obj,) = lines(run(tmp_path, *args, "--json"))
    assert obj["micro_cents"] == 27_900_000 and obj["usd"] == "0.279"
    assert obj["long_context"] is False
    assert [(t["tier"], t["tokens"], t["rate_per_mtok_micro_cents"], t["rate_per_mtok_usd"],
             t["micro_cents"], t["usd"]) for t in obj["tiers"]] == [
        ("input", 40_000, 300_000_000, "3.00", 12_000_000, "0.12"),
        ("cache_read", 80_000, 30_000_000, "0.30", 2_400_000, "0.024"),
        ("output", 9_000, 1_500_000_000, "15.00", 13_500_000, "0.135"),
    ]  # fmt: skip
    assert obj["pricing"]["cache_read_per_mtok_micro_cents"] == 30_000_000
    text = run(tmp_path, *args).stdout.splitlines()
    assert text[0].startswith("claude-sonnet-4-6: 27900000 µ¢")
    assert text[1:] == [
        "  input: 40000 tokens x $3/Mtok = 12000000 µ¢",
        "  cache_read: 80000 tokens x $0.3/Mtok = 2400000 µ¢",
        "  output: 9000 tokens x $15/Mtok = 13500000 µ¢",
    ]


def test_price_refuses_cache_counts_beyond_the_input(tmp_path: Path) -> None:
    result = run(tmp_path, "price", "sonnet", "--input-tokens", "10", "--output-tokens", "0",
                 "--cache-read-tokens", "11")  # fmt: skip
    assert result.exit_code != 0
    assert "input_tokens (10), which include them" in result.stderr


def test_price_with_speed_fast_uses_the_fast_table_or_says_there_is_none(tmp_path: Path) -> None:
    """Opus 4.7 in fast mode at Anthropic's $30/$150 per Mtok; Sonnet has no fast price."""
    args = ("price", "opus", "--input-tokens", "100", "--output-tokens", "1000")
    (fast,) = lines(run(tmp_path, *args, "--speed", "fast", "--json"))
    assert (fast["micro_cents"], fast["fast"], fast["speed_unpriced"]) == (15_300_000, True, False)
    assert fast["pricing"]["fast"]["input_per_mtok_usd"] == "30.00"
    assert run(tmp_path, *args, "--speed", "fast").stdout.splitlines()[1] == "  fast-mode rates"
    (plain,) = lines(run(tmp_path, *args, "--speed", "standard", "--json"))
    assert (plain["micro_cents"], plain["fast"]) == (2_550_000, False)
    text = run(tmp_path, "price", "sonnet", "--input-tokens", "1", "--output-tokens", "1",
               "--speed", "fast").stdout.splitlines()  # fmt: skip
    assert text[1] == "  no fast price for claude-sonnet-4-6: standard rates (a lower bound)"
    refused = run(tmp_path, *args, "--speed", "turbo")
    assert refused.exit_code == 2 and "turbo" in refused.stderr
