"""Where kei's Claude Code costs and ccusage's cannot agree, each difference asserted
exactly (docs/claude-code.md, "kei and ccusage"): a line without ``requestId`` read
twice, prices above 200k input tokens, a model kei's catalog lacks, and the edges of
5-hour blocks that a zero-usage line moves; and where fast mode, which both read,
agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccusage_peer import Ccusage, by_date, kei_import, kei_micro, kei_rows, micro
from ccusage_trees import blocks_tree, differences_tree

# µ¢ for the calls of differences_tree at ccusage's rates (per token: Haiku 100 in,
# 500 out; Sonnet 300 in, 1,500 out; Opus 500 in, 2,500 out)
HAIKU_CALL = 100 * 100 + 100 * 500  # every day's ordinary call: both agree
IDLESS = 50 * 300 + 1_000 * 1_500  # the line without requestId
OPUS_CALL = 100 * 500 + 1_000 * 2_500  # fast mode's call, and Opus 4.6's
# Sonnet 4.5 above 200k input tokens. ccusage splits each field at 200k tokens of that
# field (input 300, cache write 375, cache read 30, output 1,500 below; 600, 750, 60,
# 2,250 above); kei, as Anthropic bills it, prices every token of a call whose whole
# input (cached included) is above 200k at the higher rates.
LONG_READ_CCUSAGE = 10 * 300 + 200_000 * 30 + 50_000 * 60 + 1_000 * 1_500
LONG_READ_KEI = 10 * 600 + 250_000 * 60 + 1_000 * 2_250
LONG_SUM_CCUSAGE = 10 * 300 + 100_000 * 375 + 150_000 * 30 + 500 * 1_500  # no field > 200k
LONG_SUM_KEI = 10 * 600 + 100_000 * 750 + 150_000 * 60 + 500 * 2_250
FAST = 6  # ccusage's multiplier for Opus in fast mode (LiteLLM's ``provider_specific_entry``)
# kei prices a fast message from the entry's ``fast`` table: ccusage's rates times 6
# (``ccusage_prices_toml``), and Anthropic's ($30/$150 for Opus 4.7, 6 x $5/$25) in the
# shipped catalog; so on a call without cache writes the two agree to the µ¢.


def test_each_difference_is_exactly_its_rule(
    ccusage: Ccusage, tmp_path: Path, sqlite_url: str, in_kei: Any
) -> None:
    claude = tmp_path / "claude"
    differences_tree(claude)
    run = kei_import(in_kei, sqlite_url, tmp_path / "kei", claude, ccusage_prices=True)
    assert by_date(ccusage, claude, "daily", "date") == {
        "2026-05-01": HAIKU_CALL + 2 * IDLESS,  # counted each time it is read
        "2026-05-02": HAIKU_CALL + LONG_READ_CCUSAGE + LONG_SUM_CCUSAGE,
        "2026-05-03": HAIKU_CALL + FAST * OPUS_CALL,
        "2026-05-04": HAIKU_CALL + OPUS_CALL,  # Opus 4.6 from ccusage's table
    }
    assert kei_micro(run, "day") == {
        "2026-05-01": HAIKU_CALL + IDLESS,  # keyed by its uuid: once
        "2026-05-02": HAIKU_CALL + LONG_READ_KEI + LONG_SUM_KEI,
        "2026-05-03": HAIKU_CALL + FAST * OPUS_CALL,  # usage.speed: the fast table
        "2026-05-04": HAIKU_CALL,  # Opus 4.6 recorded unpriced: unknown, not $0
    }
    assert kei_rows(run, "day")["2026-05-04"]["unpriced_events"] == 1


def test_a_zero_usage_line_moves_ccusage_block_edges(
    ccusage: Ccusage, tmp_path: Path, sqlite_url: str, in_kei: Any
) -> None:
    """ccusage's blocks count every line with a usage, the ``<synthetic>`` placeholder of
    an API error included: it opens a block at 09:00, so 14:30 falls past its five hours
    and opens another. kei bills no zero usage: one block from 13:00. Same money."""
    claude = tmp_path / "claude"
    blocks_tree(claude)
    run = kei_import(in_kei, sqlite_url, tmp_path / "kei", claude, ccusage_prices=False)
    first, second = 10 * 300 + 1_000 * 1_500, 20 * 300 + 2_000 * 1_500
    found = [
        (b["startTime"], b["entries"], micro(b["costUSD"]))
        for b in ccusage.report(claude, "blocks")["blocks"]
        if not b["isGap"]
    ]
    assert found == [
        ("2026-06-01T09:00:00.000Z", 2, first),
        ("2026-06-01T14:00:00.000Z", 1, second),
    ]
    assert kei_micro(run, "block") == {"2026-06-01T13:00Z": first + second}
    assert kei_micro(run, "day") == by_date(ccusage, claude, "daily", "date")
