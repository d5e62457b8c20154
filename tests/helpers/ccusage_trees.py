"""Claude Code trees (``<config>/projects/...``) that kei and ccusage both read.

:func:`parity_tree` is the ordinary case, on which the two must agree: two projects,
three sessions over five days and two months, Opus, Sonnet and a dated Haiku alias,
5-minute and 1-hour cache writes and cache reads, a message streamed twice, a resumed
session starting with copies of its parent's lines, sub-agents in
``<session>/subagents/agent-<id>.jsonl`` (one repeating a parent's line) linked by their
Task results, a malformed line, and activity that runs past a 5-hour block.
:func:`differences_tree` and :func:`blocks_tree` hold, day by day, the cases where the
two differ (docs/claude-code.md); :func:`probe_tree` reads ccusage's prices back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from claude_transcripts import assistant, task_result, user, write

ALPHA, BETA = "/home/dev/alpha", "/home/dev/beta"  # working directories (kei's projects)
ALPHA_DIR, BETA_DIR = "-home-dev-alpha", "-home-dev-beta"  # Claude Code's folders for them
A1 = "a1a1a1a1-0000-4000-8000-000000000001"
A2 = "a2a2a2a2-0000-4000-8000-000000000002"  # resumed from A1
B1 = "b1b1b1b1-0000-4000-8000-000000000003"
OPUS, SONNET, HAIKU = "claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5"
HAIKU_DATED = "claude-haiku-4-5-20251001"  # kei: an alias of HAIKU; ccusage: its own entry
# session -> (its folder, the Task tool_use_id of its sub-agent, or None)
SESSIONS: Final = {A1: (ALPHA_DIR, "toolu_A1"), A2: (ALPHA_DIR, None), B1: (BETA_DIR, "toolu_B1")}
# 1-hour cache writes, µ¢ kei's shipped catalog adds per day over ccusage's one
# cache-write rate: tokens x (2 x input - 1.25 x input) per token
ONE_HOUR_EXTRA: Final = {"2026-03-01": 4_000 * (1000 - 625), "2026-03-03": 10_000 * (600 - 375)}


def _msg(session: str, key: str, at: str, model: str, cwd: str, **usage: Any) -> dict[str, Any]:
    return assistant(session, f"msg_{key}", f"req_{key}", at, model=model, cwd=cwd, **usage)


def parity_tree(config: Path) -> Path:
    """The tree described in the module docstring, under ``config/projects``."""
    alpha, beta = config / "projects" / ALPHA_DIR, config / "projects" / BETA_DIR
    a1_1 = _msg(A1, "a1_1", "2026-03-01T09:59:30.000Z", OPUS, ALPHA, tokens_in=12,
                tokens_out=800, cache_write=30_000, cache_1h=4_000)  # fmt: skip
    a1_2 = _msg(A1, "a1_2", "2026-03-01T10:05:00.000Z", OPUS, ALPHA, tokens_in=3,
                tokens_out=1_200, cache_write=2_500, cache_read=30_000)  # fmt: skip
    a1_3 = _msg(A1, "a1_3", "2026-03-01T13:50:00.000Z", SONNET, ALPHA, tokens_in=8,
                tokens_out=500, cache_read=32_500)  # fmt: skip
    a1_4 = _msg(A1, "a1_4", "2026-03-01T14:10:00.000Z", OPUS, ALPHA, tokens_in=5,
                tokens_out=300, cache_read=35_000)  # 5 h 10 after 09:00: a new block  # fmt: skip
    write(alpha / f"{A1}.jsonl", [
        user(A1, "fix the retry loop", "2026-03-01T09:58:00.000Z"),
        a1_1, a1_1,  # streamed: one request written twice
        a1_2,
        task_result(A1, "toolu_A1", "sub1", "2026-03-01T10:40:00.000Z"),
        "{not json",
        a1_3, a1_4,
    ])  # fmt: skip
    write(alpha / A1 / "subagents" / "agent-sub1.jsonl", [
        _msg(A1, "s1_1", "2026-03-01T10:10:00.000Z", HAIKU, ALPHA, tokens_in=2_000,
             tokens_out=150, cache_write=8_000, sidechain=True, agent_id="sub1"),
        a1_2,  # a sub-agent's file may repeat its parent's line
        _msg(A1, "s1_2", "2026-03-01T10:30:00.000Z", HAIKU, ALPHA, tokens_in=40,
             tokens_out=600, cache_read=8_000, sidechain=True, agent_id="sub1"),
    ])  # fmt: skip
    write(alpha / f"{A2}.jsonl", [
        a1_3, a1_4,  # the resumed session starts with copies of its parent's lines
        user(A2, "go on", "2026-03-02T23:39:00.000Z"),
        _msg(A2, "a2_1", "2026-03-02T23:40:00.000Z", SONNET, ALPHA, tokens_in=10,
             tokens_out=2_000, cache_read=40_000),
        _msg(A2, "a2_2", "2026-03-03T00:20:00.000Z", SONNET, ALPHA, tokens_in=6,
             tokens_out=700, cache_write=12_000, cache_1h=10_000, cache_read=52_000),
        _msg(A2, "a2_3", "2026-03-03T00:25:00.000Z", HAIKU_DATED, ALPHA, tokens_in=300,
             tokens_out=90),
    ])  # fmt: skip
    write(beta / f"{B1}.jsonl", [
        _msg(B1, "b1_1", "2026-03-31T21:30:00.000Z", SONNET, BETA, tokens_in=20,
             tokens_out=400, cache_write=6_000),
        _msg(B1, "b1_2", "2026-03-31T23:59:59.500Z", SONNET, BETA, tokens_in=4,
             tokens_out=350, cache_read=6_000),
        _msg(B1, "b1_3", "2026-04-01T00:00:00.250Z", OPUS, BETA, tokens_in=7,
             tokens_out=900, cache_write=1_500, cache_read=6_000),
        task_result(B1, "toolu_B1", "sub2", "2026-04-01T00:40:00.000Z"),
        _msg(B1, "b1_4", "2026-04-01T02:40:00.000Z", SONNET, BETA, tokens_in=9,
             tokens_out=250, cache_read=7_500),  # 5 h 40 after 21:00: a new block
    ])  # fmt: skip
    write(beta / B1 / "subagents" / "agent-sub2.jsonl", [
        _msg(B1, "s2_1", "2026-04-01T00:30:00.000Z", HAIKU, BETA, tokens_in=1_200,
             tokens_out=80, sidechain=True, agent_id="sub2"),
    ])  # fmt: skip
    return config / "projects"


# -- where they differ, one case a day -----------------------------------------------------

D1 = "d1d1d1d1-0000-4000-8000-000000000004"
D2 = "d2d2d2d2-0000-4000-8000-000000000005"  # resumed from D1
SONNET_45 = "claude-sonnet-4-5"  # ccusage has rates above 200k tokens for it


def differences_tree(config: Path) -> Path:
    """2026-05-01: a line without ``requestId`` that a resumed session copied;
    2026-05-02: two Sonnet 4.5 calls with more than 200k input tokens; 2026-05-03: an
    Opus call in fast mode (``usage.speed``); 2026-05-04: Opus 4.6, which kei's shipped
    catalog does not price. Each day also bills one ordinary Haiku call."""
    folder = config / "projects" / ALPHA_DIR
    idless = assistant(D1, "msg_old", None, "2026-05-01T10:00:00.000Z", model=SONNET,
                       cwd=ALPHA, tokens_in=50, tokens_out=1_000, uuid="u-old")  # fmt: skip
    fast = _msg(D1, "fast", "2026-05-03T10:00:00.000Z", OPUS, ALPHA, tokens_in=100,
                tokens_out=1_000)  # fmt: skip
    fast["message"]["usage"]["speed"] = "fast"
    write(folder / f"{D1}.jsonl", [
        *(_msg(D1, f"h{day}", f"2026-05-0{day}T09:00:00.000Z", HAIKU, ALPHA, tokens_in=100,
               tokens_out=100) for day in range(1, 5)),
        idless,
        _msg(D1, "long_read", "2026-05-02T10:00:00.000Z", SONNET_45, ALPHA, tokens_in=10,
             tokens_out=1_000, cache_read=250_000),
        _msg(D1, "long_sum", "2026-05-02T10:05:00.000Z", SONNET_45, ALPHA, tokens_in=10,
             tokens_out=500, cache_write=100_000, cache_read=150_000),
        fast,
        _msg(D1, "opus46", "2026-05-04T10:00:00.000Z", "claude-opus-4-6", ALPHA,
             tokens_in=100, tokens_out=1_000),
    ])  # fmt: skip
    write(folder / f"{D2}.jsonl", [idless, user(D2, "go on", "2026-05-05T08:00:00.000Z")])
    return config / "projects"


def blocks_tree(config: Path) -> Path:
    """2026-06-01: Claude Code's ``<synthetic>`` placeholder (an API error, usage all
    zeros) at 09:10, then two billed Sonnet calls at 13:30 and 14:30."""
    session = "e1e1e1e1-0000-4000-8000-000000000006"
    synthetic = assistant(session, "msg_err", "req_err", "2026-06-01T09:10:00.000Z",
                          model="<synthetic>", cwd=ALPHA, tokens_in=0, tokens_out=0)  # fmt: skip
    synthetic["isApiErrorMessage"] = True
    write(config / "projects" / ALPHA_DIR / f"{session}.jsonl", [
        synthetic,
        _msg(session, "e1", "2026-06-01T13:30:00.000Z", SONNET, ALPHA, tokens_in=10,
             tokens_out=1_000),
        _msg(session, "e2", "2026-06-01T14:30:00.000Z", SONNET, ALPHA, tokens_in=20,
             tokens_out=2_000),
    ])  # fmt: skip
    return config / "projects"


PROBE_TOKENS: Final = 100_000  # under 200k, so no model's higher rates apply
PROBE_DAYS: Final = {"input": "01", "output": "02", "cache_write": "03", "cache_read": "04",
                     "cache_write_1h": "05"}  # fmt: skip


def probe_tree(config: Path, models: list[str]) -> Path:
    """One call per model and tier, each tier on its own day of July 2026, with
    :data:`PROBE_TOKENS` tokens of that tier only."""
    session = "f1f1f1f1-0000-4000-8000-000000000007"
    lines: list[dict[str, Any] | str] = []
    for n, model in enumerate(models):
        for tier, day in PROBE_DAYS.items():
            usage = {"tokens_in": 0, "tokens_out": 0, "cache_read": 0, "cache_write": 0}
            key = "cache_write" if tier == "cache_write_1h" else tier
            usage[{"input": "tokens_in", "output": "tokens_out"}.get(key, key)] = PROBE_TOKENS
            lines.append(_msg(session, f"{n}_{tier}", f"2026-07-{day}T10:00:00.000Z", model,
                              ALPHA, cache_1h=PROBE_TOKENS if tier == "cache_write_1h" else 0,
                              **usage))  # fmt: skip
    write(config / "projects" / ALPHA_DIR / f"{session}.jsonl", lines)
    return config / "projects"
