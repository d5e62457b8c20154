"""``kei mcp serve`` driven by the MCP SDK's own client over stdio, as a subprocess.

One server per store (SQLite file, PostgreSQL database): the handshake, every tool,
resource and prompt, failures as ``isError`` results; then the log is checked with
``kei verify-chain`` and every changing call is found in it, in the batch of what it
changed. Raw frames (bytes in, lines out) check what the SDK's client hides: no reply
to a notification, ``ping``, an unknown protocol version answered with a known one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="kei mcp serve needs the mcp extra: pip install 'kei[mcp]'")

import anyio
from mcp.types import Implementation

import kei as kei_api
from cli_helpers import cli_env, kei
from kei.domain.events import ToolCalled
from mcp import Client, StdioServerParameters

WRITES = {"agent_fork", "agent_done", "agent_fail", "agent_merged", "agent_outcome",
          "cost_record", "memory_write", "route_select", "route_outcome", "skill_record"}  # fmt: skip
READS = {"memory_get", "memory_query", "memory_search", "route_explain", "events_tail",
         "verify_status", "agent_tree", "budget_status"}  # fmt: skip
HANDSHAKE_VERSIONS = {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}
pytestmark = pytest.mark.filterwarnings("ignore:ping is removed")


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    environment = cli_env(tmp_path / "home", store_url)
    done = kei(["init"], environment)
    assert done.returncode == 0, done.stderr
    return environment


def _params(env: dict[str, str], *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "kei", "mcp", "serve", *extra], env=env
    )


def _answer(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    return data


class Session:
    """The calls one test makes, counting those that may change the log."""

    def __init__(self, client: Client) -> None:
        self.client, self.changing = client, 0

    async def call(self, tool: str, **args: Any) -> Any:
        self.changing += tool in WRITES
        return await self.client.call_tool(tool, args)

    async def ok(self, tool: str, **args: Any) -> dict[str, Any]:
        return _answer(await self.call(tool, **args))

    async def error(self, tool: str, **args: Any) -> str:
        result = await self.call(tool, **args)
        assert result.is_error, result
        text = result.content[0].text
        assert "\n" not in text and text, text
        return str(text)


async def _drive(env: dict[str, str]) -> int:
    info = Implementation(name="kei-test-client", version="9.9")
    async with Client(_params(env), mode="legacy", client_info=info) as client:
        assert client.protocol_version in HANDSHAKE_VERSIONS
        assert client.server_info is not None and client.server_info.name == "kei"
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == WRITES | READS
        assert all(tools[t].annotations.read_only_hint for t in READS)
        assert not any(tools[t].annotations.read_only_hint for t in WRITES)
        await client.send_ping()  # legacy mode: ping is a handshake-era method
        s = Session(client)
        await _writes(s)
        await _reads(s)
        await _views(client)
        return s.changing


async def _writes(s: Session) -> None:
    fork = await s.ok(
        "agent_fork", agent_id="a1", branch="feat/a1", dna="r::c::abcdef01::abcdef01-deadbeef"
    )
    assert fork["appended"] == 2 and fork["call_position"] > 0
    await s.ok("agent_fork", agent_id="a2", branch="feat/a2", parent="a1")
    assert "a1" in await s.error("agent_fork", agent_id="a1", branch="again")
    assert (await s.ok("agent_done", agent_id="a1", summary="built it"))["appended"] == 1
    assert (await s.ok("agent_done", agent_id="a1", summary="again"))["appended"] == 0
    await s.ok("agent_fail", agent_id="a2", reason="tests red")
    await s.ok("agent_merged", agent_id="a1")
    await s.ok("agent_outcome", agent_id="a1", outcome="functional")
    assert "nobody" in await s.error("agent_done", agent_id="nobody", summary="x")
    assert "summary" in await s.error("agent_done", agent_id="a1")  # refused by the SDK
    await s.error("agent_outcome", agent_id="a1", outcome="functional", stubs="many")
    cost = await s.ok("cost_record", agent_id="a1", provider="anthropic",
                      model="claude-sonnet-4-5", micro_cents=1234)  # fmt: skip
    assert cost["total_micro_cents"] == 1234
    await s.error("cost_record", agent_id="a1", provider="anthropic", model="m")
    await s.ok("memory_write", key="plan", value="ship the mcp server", tags=["mcp"])
    secret = "AKIA" + "ABCDEFGHIJKLMNOP"
    assert secret not in await s.error("memory_write", key="aws", value=f"key {secret}")
    routed = await s.ok(
        "route_select", dna="coder::rust-test::3F2A9C01::7B1E44D0-9a0c11fe", prompt="write a parser"
    )
    await s.ok("route_outcome", decision_id=routed["decision_id"], outcome="functional")
    await s.error("route_outcome", decision_id="no-such-decision", outcome="functional")
    await s.ok("skill_record", skill_name="tdd", success=True, duration_ms=1200)
    await s.error("skill_record", skill_name=" ", success=False)


async def _reads(s: Session) -> None:
    got = await s.ok("memory_get", key="plan")
    assert got["item"]["value"] == "ship the mcp server" and got["position"] > 0
    assert (await s.ok("memory_get", key="missing"))["item"] is None
    assert len((await s.ok("memory_query", tag_any=["mcp"]))["items"]) == 1
    assert len((await s.ok("memory_search", text="mcp server"))["items"]) == 1
    tail = await s.ok("events_tail", n=5)
    assert len(tail["events"]) == 5 and tail["position"] == tail["events"][-1]["position"]
    assert (await s.ok("verify_status"))["ok"] is True
    tree = await s.ok("agent_tree", root="a1")
    assert [a["id"] for a in tree["agents"]] == ["a1", "a2"]
    assert (await s.ok("budget_status"))["budgets"] == []
    decision = (await s.ok("events_tail", n=1, types=["route.decided"]))["events"][0]
    explained = await s.ok("route_explain", decision_id=decision["payload"]["decision_id"])
    assert explained["rederived"] is True
    assert "no agent" not in await s.error("memory_search", text="   ")


async def _views(client: Client) -> None:
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"kei://costs/report", "kei://skills", "kei://events/recent"} <= uris
    templates = {
        t.uri_template for t in (await client.list_resource_templates()).resource_templates
    }
    assert {"kei://agents/{root}/tree", "skill://{name}", "kei://costs/report/{by}"} <= templates
    report = await _resource(client, "kei://costs/report")
    assert report["total_micro_cents"] == 1234 and report["position"] > 0
    assert (await _resource(client, "skill://tdd"))["skills"][0]["skill_name"] == "tdd"
    assert len((await _resource(client, "kei://agents/a1/tree"))["agents"]) == 2
    assert (await _resource(client, "kei://events/recent"))["events"]
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert prompts == {"handoff", "retro"}
    handoff = await client.get_prompt("handoff", {"agent_id": "a1"})
    assert "a1" in handoff.messages[0].content.text


async def _resource(client: Client, uri: str) -> dict[str, Any]:
    result = await client.read_resource(uri)
    data: dict[str, Any] = json.loads(result.contents[0].text)
    return data


def test_a_client_calls_everything_and_every_change_is_in_the_log(
    env: dict[str, str], store_url: str
) -> None:
    changing = anyio.run(_drive, env)
    sent = {"agent_id": "a1", "branch": "feat/a1", "dna": "r::c::abcdef01::abcdef01-deadbeef"}
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":")).encode()
    assert kei(["verify-chain"], env).returncode == 0
    with kei_api.Ledger.open(store_url) as ledger:
        events = list(ledger.read())
    calls = [e for e in events if e.type == "mcp.tool.called"]
    assert len(calls) == changing
    first = calls[0].payload()
    assert isinstance(first, ToolCalled) and first.tool == "agent_fork"
    assert first.args_sha256 == hashlib.sha256(canonical).hexdigest()
    for i, e in enumerate(events):
        payload = e.payload()
        if not isinstance(payload, ToolCalled):
            continue
        assert payload.client_name == "kei-test-client" and payload.client_version == "9.9"
        assert len(payload.args_sha256) == 64 and payload.duration_us >= 0
        if payload.appended:  # its batch: the events just before it, the same transaction
            batch = events[i - payload.appended : i]
            assert all(b.timestamp_us == e.timestamp_us for b in batch), (payload, batch)
        else:
            assert payload.is_error or payload.tool == "agent_done"


def test_read_only_refuses_changes_as_tool_errors(env: dict[str, str]) -> None:
    async def drive() -> None:
        async with Client(_params(env, "--read-only"), mode="legacy") as client:
            refused = await client.call_tool("memory_write", {"key": "k", "value": "v"})
            assert refused.is_error and "read-only" in refused.content[0].text
            assert not (await client.call_tool("events_tail", {"n": 1})).is_error

    anyio.run(drive)


def _frames(env: dict[str, str], *messages: dict[str, Any], wait_for: int) -> list[dict[str, Any]]:
    """Send raw JSON-RPC lines; read replies until ``wait_for`` ids answered, then EOF."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kei", "mcp", "serve"], env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    for m in messages:
        proc.stdin.write(json.dumps(m) + "\n")
    proc.stdin.flush()
    replies = []
    while len([r for r in replies if "id" in r]) < wait_for:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        replies.append(json.loads(line))
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    replies += [json.loads(line) for line in proc.stdout.read().splitlines()]
    return replies


def test_raw_frames_negotiate_answer_ping_and_never_reply_to_notifications(
    env: dict[str, str],
) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "1999-01-01", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}}  # fmt: skip
    replies = _frames(
        env,
        init,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "agent_done", "arguments": {"agent_id": "x", "summary": "s"}}},
        wait_for=3,
    )  # fmt: skip
    assert [r.get("id") for r in replies] == [1, 2, 3]  # nothing for the notifications
    assert replies[0]["result"]["protocolVersion"] in HANDSHAKE_VERSIONS
    assert replies[1]["result"] == {}
    assert replies[2]["result"]["isError"] is True


def test_two_clients_with_two_keys_write_at_once_and_each_call_is_attributable(
    env: dict[str, str], store_url: str
) -> None:
    assert kei(["keys", "new", "second"], env).returncode == 0
    second = {**env, "KEI_KEY": "second"}

    async def client(environment: dict[str, str], name: str) -> None:
        info = Implementation(name=name, version="1")
        async with Client(_params(environment), mode="legacy", client_info=info) as c:
            for i in range(8):
                _answer(await c.call_tool("memory_write", {"key": f"{name}-{i}", "value": "v"}))
                _answer(await c.call_tool("agent_fork", {"agent_id": f"{name}-{i}", "branch": "b"}))

    async def both() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(client, env, "one")
            group.start_soon(client, second, "two")

    anyio.run(both)
    assert kei(["verify-chain"], env).returncode == 0
    with kei_api.Ledger.open(store_url) as ledger:
        calls = [e for e in ledger.read() if e.type == "mcp.tool.called"]
    signers: dict[str, set[str]] = {}
    for e in calls:
        payload = e.payload()
        assert isinstance(payload, ToolCalled) and not payload.is_error
        signers.setdefault(payload.client_name, set()).add(e.key_id)
    assert len(calls) == 32
    assert len(signers["one"]) == 1 and len(signers["two"]) == 1
    assert signers["one"] != signers["two"]
