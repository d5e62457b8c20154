"""``kei models sync`` against the real genai-prices package (the ``prices`` extra)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import cli_env
from kei.adapters.cli.app import app
from kei.adapters.files.catalog import load_catalog


def run(home: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["models", *args], env=cli_env(home))
    return r.exit_code, r.stdout, r.stderr


def test_sync_writes_versioned_prices_and_the_user_file_still_wins(tmp_path: Path) -> None:
    pytest.importorskip("genai_prices")
    home = tmp_path / "home"
    code, out, _ = run(home, "sync", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["path"] is None
    assert not (home / "prices.toml").exists()
    code, out, _ = run(home, "sync", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["version"].startswith("genai-prices ")
    assert answer["path"] == str(home / "prices.toml")
    priced = {m["model_id"] for m in answer["models"] if m["priced"]}
    assert {"claude-sonnet-4-6", "gpt-4o"} <= priced
    assert "llama-3-70b-local" in answer["unmatched"]
    sonnet = load_catalog(home).get("sonnet").pricing
    assert sonnet.source_version == answer["version"] and sonnet.vouched
    assert sonnet.cache_read_per_mtok_micro is not None
    (home / "models.toml").write_text(
        '[[models]]\nid = "claude-sonnet-4-6"\n[models.pricing]\ninput_per_mtok_micro = 1\n'
        'output_per_mtok_micro = 2\nstatus = "needs-verification"\n', encoding="utf-8")  # fmt: skip
    assert load_catalog(home).get("sonnet").pricing.input_per_mtok_micro == 1
    code, out, _ = run(home, "list", "--provider", "deepseek")
    assert "verified genai-prices " in out


def test_sync_without_the_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # import fails
    code, _, err = run(tmp_path / "home", "sync")
    assert code != 0
    assert "kei models sync needs the genai-prices package" in err
    assert "pip install 'kei[prices]'" in err
    assert not (tmp_path / "home" / "prices.toml").exists()


def test_sync_adds_the_databases_models_and_their_exact_names(tmp_path: Path) -> None:
    """After a sync, a Claude Code transcript's model ids price: new models, dated
    snapshots and the database's exact names; a second sync writes the same file, and
    a name the user's catalog already uses is never taken."""
    pytest.importorskip("genai_prices")
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.toml").write_text(
        '[[models]]\nid = "gpt-4o-2024-11-20"\nprovider = "openai"\nstatus = "active"\n'
        "[models.pricing]\ninput_per_mtok_micro = 1\noutput_per_mtok_micro = 2\n"
        'status = "needs-verification"\n'
    )
    code, out, _ = run(home, "sync", "--json")
    assert code == 0
    added = {m["model_id"] for m in json.loads(out)["models"] if m["added"]}
    assert {"claude-opus-4-6", "claude-sonnet-4-5"} <= added
    first = (home / "prices.toml").read_bytes()
    assert run(home, "sync")[0] == 0 and (home / "prices.toml").read_bytes() == first
    catalog = load_catalog(home)
    assert catalog.get("claude-sonnet-4-5-20250929").id == "claude-sonnet-4-5"
    assert catalog.get("claude-opus-4-6").role_tags == ()
    assert catalog.get("gpt-4o-2024-08-06").id == "gpt-4o"  # the database's exact name
    assert catalog.get("gpt-4o-2024-11-20").id == "gpt-4o-2024-11-20"  # the user's, kept
    assert catalog.get("opus").id == "claude-opus-4-7"  # kei's aliases survive the sync
    assert catalog.router == load_catalog(None).router  # the router's ladder is untouched


def test_sync_keeps_the_shipped_fast_table_where_the_database_has_none(tmp_path: Path) -> None:
    """genai-prices prices no fast mode for Opus 4.7; the shipped fast rates survive."""
    pytest.importorskip("genai_prices")
    home = tmp_path / "home"
    assert run(home, "sync")[0] == 0
    synced, shipped = load_catalog(home).get("opus"), load_catalog(None).get("opus")
    assert synced.pricing.source_version is not None
    assert synced.pricing.fast is not None and synced.pricing.fast == shipped.pricing.fast
