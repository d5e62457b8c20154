"""``/mcp``: an MCP client over streamable HTTP calls a tool and the call is in the log,
signed by the key bound to its token; a read token reaches only the read tools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mcp", reason="/mcp needs the mcp extra: pip install 'kei[mcp]'")

import anyio
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from http_server import READ, WRITE, DictTokens, bearer, running
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey
from kei.domain.tokens.grant import Grant
from mcp import Client


@pytest.fixture
def mcp_base(ledger_url: str, key: SigningKey, tmp_path: Path) -> Iterator[tuple[str, str]]:
    other = SigningKey.generate(name="agent-key")
    with Ledger.open(ledger_url, key=key) as ledger:
        ledger.add_key(other)
    grant = Grant(token_id="ag", name="agent", scope="write", key_id=other.key_id_hex,
                  expires_us=None)  # fmt: skip
    tokens = DictTokens({"tok-agent": grant})
    keys = {other.key_id_hex: other}
    with running(ledger_url, key, tmp_path, tokens=tokens, keys=keys, mcp=True) as base:
        yield base, other.key_id_hex


async def _call(base: str, token: str, tool: str, **args: Any) -> Any:
    http = create_mcp_http_client(headers=bearer(token))
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        return await client.call_tool(tool, args)


def test_a_tool_call_over_http_is_in_the_log_signed_by_the_tokens_key(
    mcp_base: tuple[str, str], ledger_url: str
) -> None:
    base, key_id = mcp_base
    result = anyio.run(lambda: _call(base, "tok-agent", "agent_fork", agent_id="m1", branch="b"))
    assert not result.is_error, result.content
    with Ledger.open(ledger_url) as ledger:
        found = {e.type: e for e in ledger.read() if e.stream in ("agent/m1",) or
                 e.type == "mcp.tool.called"}  # fmt: skip
        assert ledger.verify().ok
    assert found["agent.forked"].key_id == key_id
    assert found["mcp.tool.called"].key_id == key_id
    assert found["mcp.tool.called"].payload().tool == "agent_fork"


def test_a_read_token_gets_the_read_tools_only_and_no_token_gets_401(
    mcp_base: tuple[str, str], ledger_url: str
) -> None:
    base, _ = mcp_base
    refused = anyio.run(lambda: _call(base, READ, "agent_fork", agent_id="m2", branch="b"))
    assert refused.is_error and "read-only" in refused.content[0].text
    read = anyio.run(lambda: _call(base, READ, "verify_status"))
    assert not read.is_error
    r = httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    ok = anyio.run(lambda: _call(base, WRITE, "agent_fork", agent_id="m3", branch="b"))
    assert not ok.is_error
