"""Budgets over MCP: ``cost_record`` checks them as ``kei cost record`` does and answers
with what it crossed; ``budget_status`` reads what ``kei budget status --json`` shows;
``route_select`` takes a budget scope."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytest.importorskip("mcp", reason="kei mcp serve needs the mcp extra: pip install 'kei[mcp]'")

import anyio

from budgets_helpers import Kei, events
from mcp import Client, StdioServerParameters

pytest_plugins = ["budgets_fixtures"]  # kei_home, kei_env and kei

pytestmark = pytest.mark.filterwarnings("ignore:ping is removed")


def _ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


def test_mcp_cost_record_crosses_and_budget_status_reads(
    kei: Kei, kei_env: dict[str, str], store_url: str
) -> None:
    kei("budget", "set", "tree:root", "0.10", "--period", "month")
    params = StdioServerParameters(command=sys.executable, args=["-m", "kei", "mcp", "serve"],
                                   env=kei_env)  # fmt: skip

    async def drive() -> tuple[dict[str, Any], ...]:
        async with Client(params, mode="legacy") as client:
            first = _ok(
                await client.call_tool(
                    "cost_record",
                    {"agent_id": "kid", "provider": "p", "model": "m", "micro_cents": 4_000_000},
                )
            )
            second = _ok(
                await client.call_tool(
                    "cost_record",
                    {
                        "agent_id": "grandkid",
                        "provider": "p",
                        "model": "m",
                        "micro_cents": 7_000_000,
                    },
                )
            )
            status = _ok(await client.call_tool("budget_status", {}))
            refused = await client.call_tool("route_select", {"dna": "", "budget": "tree:root"})
            assert refused.is_error and "no model fits the budget: 0" in refused.content[0].text
            routed = _ok(
                await client.call_tool("route_select", {"dna": "", "budget_micro": 4_000_000})
            )
            return first, second, status, routed  # fmt: skip

    first, second, status, routed = anyio.run(drive)
    assert first["budget_crossings"] == []
    assert [c["threshold_percent"] for c in second["budget_crossings"]] == [50, 80, 100]
    assert second["budget_crossings"][0]["spent_usd"] == "0.11"
    (budget,) = status["budgets"]
    assert budget["spent_micro_cents"] == 11_000_000 and budget["crossed"] == [50, 80, 100]
    assert budget["remaining_usd"] == "-0.01" and status["position"] > 0
    assert routed["reason"] == "budget_capped" and routed["budget_micro_cents"] == 4_000_000
    types = [e.type for e in events(store_url)]
    assert types.count("budget.threshold.crossed") == 3


def test_mcp_cost_record_takes_a_speed_as_kei_cost_record_does(
    kei: Kei, kei_env: dict[str, str], store_url: str
) -> None:
    """``speed`` fast prices the entry's fast table ($30 / $150 per MTok on Opus 4.7),
    or, on an entry without one, the standard rates marked speed_unpriced with a note;
    a speed that is neither standard nor fast is refused by the tool's schema."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "kei", "mcp", "serve"],
                                   env=kei_env)  # fmt: skip
    call = {"agent_id": "kid", "provider": "anthropic", "tokens_in": 100, "tokens_out": 1000}

    async def drive() -> tuple[Any, ...]:
        async with Client(params, mode="legacy") as client:
            fast = await client.call_tool(
                "cost_record", {**call, "model": "claude-opus-4-7", "speed": "fast"}
            )
            plain = await client.call_tool(
                "cost_record", {**call, "model": "claude-sonnet-4-6", "speed": "fast"}
            )
            warp = await client.call_tool(
                "cost_record", {**call, "model": "claude-opus-4-7", "speed": "warp"}
            )
            return _ok(fast), _ok(plain), warp

    fast, plain, warp = anyio.run(drive)
    assert (fast["micro_cents"], fast["speed"], fast["speed_unpriced"]) == (
        15_300_000,
        "fast",
        False,
    )
    assert (plain["speed"], plain["speed_unpriced"]) == ("fast", True)
    assert "speed_unpriced" in plain["note"]
    assert warp.is_error
    stored = [e.payload_data() for e in events(store_url) if e.type == "cost.recorded"]
    assert [(p["speed"], p["speed_unpriced"]) for p in stored] == [("fast", False), ("fast", True)]
