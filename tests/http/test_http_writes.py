"""The writes: the CLI's services and rules over HTTP, signed by the token's key, and
concurrent single-event requests grouped into shared transactions, each acknowledged
after its own commit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from http_server import WRITE, DictTokens, bearer, running
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey
from kei.domain.tokens.grant import Grant

W = bearer(WRITE)
DNA = "impl::race::ABCDEF12::12345678-00010000"


def test_each_write_route_appends_through_its_service(client: httpx.Client) -> None:
    r = client.post("/v1/agents/a1/fork", headers=W, json={"branch": "main", "dna": DNA})
    assert r.status_code == 201
    ack = r.json()
    assert [e["type"] for e in ack["events"]] == ["agent.forked", "agent.dna.claimed"]
    assert ack["at"] == ack["events"][-1]["position"] and ack["events"][0]["hash"].startswith(
        "sha256:"
    )
    assert ack["result"]["appended"] == 2
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/costs", {"agent_id": "a1", "provider": "anthropic", "model": "m",
                       "micro_cents": 5}, "cost.recorded"),
        ("/v1/memory", {"key": "k", "value": "v", "tags": ["t"]}, "memory.written"),
        ("/v1/skills/lint/invocations", {"success": True, "duration_ms": 12}, "skill.invoked"),
        ("/v1/agents/a1/done", {"summary": "finished"}, "agent.done"),
        ("/v1/agents/a1/outcome", {"outcome": "functional"}, "agent.outcome"),
        ("/v1/agents/a1/merged", {}, "agent.merged"),
    ]  # fmt: skip
    for path, body, etype in calls:
        r = client.post(path, headers=W, json=body)
        assert r.status_code == 201, (path, r.text)
        assert r.json()["events"][0]["type"].startswith(etype.split(".")[0]), r.json()


def test_a_no_op_is_200_and_a_refusal_is_its_own_409(client: httpx.Client) -> None:
    client.post("/v1/agents/a/fork", headers=W, json={"branch": "main"})
    assert client.post("/v1/agents/a/fail", headers=W, json={"reason": "r"}).status_code == 201
    again = client.post("/v1/agents/a/fail", headers=W, json={"reason": "r"})
    assert again.status_code == 200 and again.json()["events"] == []
    dup = client.post("/v1/agents/a/fork", headers=W, json={"branch": "main"})
    assert dup.status_code == 409 and dup.headers["content-type"] == "application/problem+json"


def test_a_secret_is_refused_by_the_leak_matrix(client: httpx.Client, ledger_url: str) -> None:
    secret = "AKIA" + "ABCDEFGHIJKLMNOP"
    r = client.post("/v1/memory", headers=W, json={"key": "k", "value": f"key {secret}"})
    assert r.status_code == 422 and r.json()["type"].endswith("leak-blocked")
    with Ledger.open(ledger_url) as ledger:
        assert ledger.store.max_position() == 1


def test_writes_are_signed_by_the_tokens_key(
    ledger_url: str, key: SigningKey, tmp_path: Path
) -> None:
    other = SigningKey.generate(name="ci")
    with Ledger.open(ledger_url, key=key) as ledger:
        ledger.add_key(other)
    grant = Grant(token_id="ci", name="ci", scope="write", key_id=other.key_id_hex, expires_us=None)
    tokens = DictTokens({"tok-ci": grant})
    keys = {other.key_id_hex: other}
    with (
        running(ledger_url, key, tmp_path, tokens=tokens, keys=keys) as base,
        httpx.Client(base_url=base) as c,
    ):
        mine = c.post("/v1/agents/x/fork", headers=bearer("tok-ci"), json={"branch": "b"})
        theirs = c.post("/v1/agents/y/fork", headers=W, json={"branch": "b"})
    assert mine.status_code == theirs.status_code == 201
    with Ledger.open(ledger_url) as ledger:
        by_stream = {e.stream: e.key_id for e in ledger.read()}
    assert by_stream["agent/x"] == other.key_id_hex
    assert by_stream["agent/y"] == key.key_id_hex


async def _many(base: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as c:
        sends = [c.post(f"/v1/agents/g{i}/fork", headers=W, json={"branch": "b"})
                 for i in range(n)]  # fmt: skip
        sends += [c.post("/v1/agents/g0/fork", headers=W, json={"branch": "b"})]  # a conflict
        return list(await asyncio.gather(*sends))


def test_64_concurrent_writes_are_grouped_and_each_answered(
    ledger_url: str, key: SigningKey, tmp_path: Path
) -> None:
    with running(ledger_url, key, tmp_path) as base:
        answers = asyncio.run(_many(base, 64))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 64 + [409]
    positions = [e["position"] for r in answers if r.status_code == 201 for e in r.json()["events"]]
    assert len(set(positions)) == 64
    with Ledger.open(ledger_url) as ledger:
        forks = [e for e in ledger.read() if e.type == "agent.forked"]
        assert sorted(e.position for e in forks) == sorted(positions)
        assert ledger.verify().ok
