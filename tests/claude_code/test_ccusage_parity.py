"""kei's Claude Code costs beside ccusage's, the pinned release run offline on the same
transcripts (``ccusage_peer.py``): at the same prices the daily, monthly, session and
5-hour-block totals agree to the micro-cent (so to the cent); at kei's own catalog they
differ by exactly the 1-hour cache writes, which ccusage prices as 5-minute ones. Where
else they differ, and why: ``test_ccusage_differences.py`` and docs/claude-code.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ccusage_peer import CCUSAGE_RATES, Ccusage, by_date, kei_import, kei_micro, micro
from ccusage_trees import (
    HAIKU,
    ONE_HOUR_EXTRA,
    OPUS,
    PROBE_DAYS,
    PROBE_TOKENS,
    SESSIONS,
    SONNET,
    SONNET_45,
    parity_tree,
    probe_tree,
)
from kei.adapters.files.catalog import load_catalog

UNKNOWN_PROJECT = "Unknown Project"  # ccusage's projectPath of a file right in a project folder


@pytest.fixture
def claude(tmp_path: Path) -> Path:
    """A ``CLAUDE_CONFIG_DIR`` holding :func:`parity_tree`."""
    parity_tree(tmp_path / "claude")
    return tmp_path / "claude"


def test_ccusage_offline_prices_are_its_bundled_table(ccusage: Ccusage, tmp_path: Path) -> None:
    """Each (model, tier) read back from ccusage, one tier a day: its table, restated in
    ``CCUSAGE_RATES``; a 1-hour cache write costs what a 5-minute one does. kei's shipped
    Opus, Sonnet and Haiku prices are the same but for that 1-hour rate (2 x input, as
    Anthropic bills it); Sonnet 4.5 kei prices only once a models.toml or sync adds it."""
    models = list(CCUSAGE_RATES)
    probe_tree(tmp_path, models)
    tier_of = {f"2026-07-{day}": tier for tier, day in PROBE_DAYS.items()}
    found = {
        (b["modelName"], tier_of[day["date"]]): micro(b["cost"]) * (1_000_000 // PROBE_TOKENS)
        for day in ccusage.report(tmp_path, "daily")["daily"]
        for b in day["modelBreakdowns"]
    }
    rate = {"cache_write_1h": "cache_write"}
    assert found == {
        (model, tier): getattr(rates, rate.get(tier, tier))
        for model, rates in CCUSAGE_RATES.items()
        for tier in PROBE_DAYS
    }, f"ccusage {ccusage.version}'s offline prices moved: update CCUSAGE_RATES"
    catalog = load_catalog(None)
    for model in (OPUS, SONNET, HAIKU):
        entry, r = catalog.find(model), CCUSAGE_RATES[model]
        assert entry is not None
        p = entry.pricing
        assert (p.input_per_mtok_micro, p.output_per_mtok_micro,
                p.cache_write_5m_per_mtok_micro, p.cache_read_per_mtok_micro) == (
                r.input, r.output, r.cache_write, r.cache_read)  # fmt: skip
        assert p.cache_write_1h_per_mtok_micro == 2 * r.input != r.cache_write
    assert catalog.find(SONNET_45) is None


def ccusage_sessions(
    sessions: dict[str, int], agents: dict[str, int]
) -> dict[tuple[str, str], int]:
    """kei's session and sub-agent totals keyed as ccusage keys its session rows: by the
    folder holding the file. A session's own file lies in its project's folder (row
    ``(folder, 'Unknown Project')``, shared by all the project's sessions); a sub-agent's
    in ``<folder>/<session>/subagents`` (row ``('subagents', '<folder>/<session>')``)."""
    rows: dict[tuple[str, str], int] = {}
    for session, (folder, subagent) in SESSIONS.items():
        sub = agents[subagent] if subagent else 0
        key = (folder, UNKNOWN_PROJECT)
        rows[key] = rows.get(key, 0) + sessions[session] - sub
        if subagent:
            rows[("subagents", f"{folder}/{session}")] = sub
    return rows


def test_at_the_same_prices_every_report_agrees_to_the_micro_cent(
    ccusage: Ccusage, claude: Path, tmp_path: Path, sqlite_url: str, in_kei: Any
) -> None:
    run = kei_import(in_kei, sqlite_url, tmp_path / "kei", claude, ccusage_prices=True)
    daily = by_date(ccusage, claude, "daily", "date")
    assert list(daily) == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-31", "2026-04-01"]
    assert kei_micro(run, "day") == daily
    assert kei_micro(run, "month") == by_date(ccusage, claude, "monthly", "month")
    sessions = {
        (s["sessionId"], s["projectPath"]): micro(s["totalCost"])
        for s in ccusage.report(claude, "session")["sessions"]
    }
    assert len(sessions) == 4
    assert ccusage_sessions(kei_micro(run, "session"), kei_micro(run, "agent")) == sessions
    blocks = {
        b["startTime"][:16] + "Z": micro(b["costUSD"])
        for b in ccusage.report(claude, "blocks")["blocks"]
        if not b["isGap"]  # the idle time between blocks, at $0: not a kei row
    }
    assert list(blocks) == ["2026-03-01T09:00Z", "2026-03-01T14:00Z", "2026-03-02T23:00Z",
                            "2026-03-31T21:00Z", "2026-04-01T02:00Z"]  # fmt: skip
    assert kei_micro(run, "block") == blocks


def test_at_kei_catalog_prices_only_one_hour_cache_writes_differ(
    ccusage: Ccusage, claude: Path, tmp_path: Path, sqlite_url: str, in_kei: Any
) -> None:
    """kei bills a 1-hour cache write at 2 x input, ccusage at its one cache-write rate
    (1.25 x input): kei's totals are higher by exactly that, day by day and month by month."""
    run = kei_import(in_kei, sqlite_url, tmp_path / "kei", claude, ccusage_prices=False)
    daily, kei_daily = by_date(ccusage, claude, "daily", "date"), kei_micro(run, "day")
    assert {d: kei_daily[d] - daily[d] for d in daily} == {
        d: ONE_HOUR_EXTRA.get(d, 0) for d in daily
    }
    monthly, kei_monthly = by_date(ccusage, claude, "monthly", "month"), kei_micro(run, "month")
    assert {m: kei_monthly[m] - monthly[m] for m in monthly} == {
        "2026-03": sum(ONE_HOUR_EXTRA.values()),
        "2026-04": 0,
    }
