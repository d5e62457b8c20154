"""The reads: the CLI's objects with "at", the log as NDJSON and SSE (resumed), the
cached verification that extends itself and sees a tampered row."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from cli_helpers import run_sql
from http_server import READ, WRITE, bearer

R = bearer(READ)


def _fork(c: httpx.Client, agent: str, parent: str | None = None) -> dict[str, Any]:
    body = {"branch": f"b-{agent}", **({"parent": parent} if parent else {})}
    r = c.post(f"/v1/agents/{agent}/fork", headers=bearer(WRITE), json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _cost(c: httpx.Client, agent: str, micro: int, model: str = "claude-sonnet-4-6") -> None:
    body = {"agent_id": agent, "provider": "anthropic", "model": model, "micro_cents": micro}
    r = c.post("/v1/costs", headers=bearer(WRITE), json=body)
    assert r.status_code == 201, r.text


def test_agents_costs_budgets_posteriors_answer_with_at(client: httpx.Client) -> None:
    _fork(client, "root")
    _fork(client, "kid", parent="root")
    _cost(client, "kid", 600_000)
    client.post("/v1/agents/kid/done", headers=bearer(WRITE), json={"summary": "ok"})
    agents = client.get("/v1/agents", headers=R).json()
    assert agents["at"] >= 5
    kid = next(a for a in agents["agents"] if a["agent_id"] == "kid")
    assert kid["status"] == "done" and kid["parent_agent_id"] == "root"
    assert kid["cost_micro_cents"] == 600_000 and kid["cost_usd"] == "0.006"
    assert kid["forked_at"].endswith("Z") and kid["summary"] == "ok"
    report = client.get("/v1/costs?by=model", headers=R).json()
    assert report["at"] >= 5 and report["total_micro_cents"] == 600_000
    assert report["rows"][0]["model"] == "claude-sonnet-4-6"
    series = client.get("/v1/costs/series?split=agent", headers=R).json()
    assert series["series"][0]["values"] == {"kid": {"micro_cents": 600_000, "usd": "0.006"}}
    assert series["split"] == "agent" and series["budgets"] == []
    budgets = client.get("/v1/budgets", headers=R).json()
    assert budgets["budgets"] == [] and "at" in budgets and budgets["measured_at"].endswith("Z")
    posteriors = client.get("/v1/posteriors", headers=R).json()
    assert posteriors == {"at": posteriors["at"], "posteriors": []}


def test_ndjson_is_the_log_after_a_position(client: httpx.Client) -> None:
    for i in range(3):
        _fork(client, f"a{i}")
    lines = client.get("/v1/events", headers=R).text.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    assert events[1]["prev_hash"] == events[0]["hash"]
    assert {"seq", "time", "type", "stream", "key_id", "payload", "signature"} <= set(events[1])
    after = client.get("/v1/events?after=2&limit=2", headers=R).text.splitlines()
    assert [json.loads(line)["position"] for line in after] == [3, 4]
    r = client.get("/v1/events?after=999", headers=R)
    assert r.status_code == 422
    everything = client.get("/v1/events?after=-50", headers=R).text.splitlines()
    assert len(everything) == len(events)


def _sse(
    base: str, headers: dict[str, str], want: int, found: list[dict[str, Any]], query: str = ""
) -> None:
    with (
        httpx.Client(base_url=base, timeout=30) as c,
        c.stream("GET", f"/v1/events/stream{query}", headers=headers) as r,
    ):
        assert r.headers["cache-control"] == "no-store"
        frame: dict[str, str] = {}
        for line in r.iter_lines():
            if line == "" and "data" in frame:
                found.append({"id": int(frame["id"]), **json.loads(frame["data"])})
                frame = {}
                if len(found) >= want:
                    return
            elif ":" in line and not line.startswith(":"):
                name, _, value = line.partition(":")
                frame[name] = value.strip()


def test_sse_sends_new_events_and_resumes_after_last_event_id(
    client: httpx.Client, base: str
) -> None:
    _fork(client, "first")
    found: list[dict[str, Any]] = []
    reader = threading.Thread(target=_sse, args=(base, R, 4, found, "?after=0"))
    reader.start()
    _fork(client, "second")
    _fork(client, "third")
    reader.join(timeout=30)
    assert [e["id"] for e in found] == [1, 2, 3, 4]
    assert all(e["id"] == e["position"] for e in found)
    assert found[3]["prev_hash"] == found[2]["hash"]
    resumed: list[dict[str, Any]] = []
    _sse(base, {**R, "Last-Event-ID": "2"}, 2, resumed, "?after=0")  # the header wins
    assert [e["id"] for e in resumed] == [3, 4]
    fresh: list[dict[str, Any]] = []
    reader = threading.Thread(target=_sse, args=(base, R, 1, fresh))  # from the head on
    reader.start()
    n = 0
    while reader.is_alive() and not fresh:
        _fork(client, f"later-{n}")
        n += 1
        reader.join(timeout=0.2)
    reader.join(timeout=30)
    assert fresh[0]["id"] >= 5


def test_verify_is_cached_extended_and_sees_tampering(
    client: httpx.Client, ledger_url: str
) -> None:
    first = client.get("/v1/verify", headers=R).json()
    assert first["ok"] is True and first["verified_up_to"] == 1 and first["findings"] == []
    _fork(client, "v1")
    second = client.get("/v1/verify", headers=R).json()
    assert second["ok"] is True and second["verified_up_to"] == 2
    assert second["head_hash"].startswith("sha256:")
    _fork(client, "v2")
    (state,) = run_sql(ledger_url, "SELECT state FROM kei_events WHERE rowid = 3")[0]
    flipped = bytes(state)[:-2] + bytes([bytes(state)[-2] ^ 1]) + bytes(state)[-1:]
    run_sql(ledger_url, "UPDATE kei_events SET state = ? WHERE rowid = 3", (flipped,))
    third = client.get("/v1/verify", headers=R).json()
    assert third["ok"] is False and third["verified_up_to"] == 3
    assert third["findings"] and third["findings"][0]["position"] == 3


def test_checkpoint_is_signed_text(client: httpx.Client) -> None:
    _fork(client, "c1")
    r = client.get("/v1/checkpoint", headers=R)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert int(r.headers["x-kei-at"]) == 2
    assert "\n2\n" in r.text  # the C2SP note's size line
    assert client.get("/v1/checkpoint", headers=R).text == r.text  # cached


def test_proofs_check_out_and_bad_parameters_are_problems(client: httpx.Client) -> None:
    from kei.domain.log.proofs import ConsistencyProof, InclusionProof, parse_proof

    for i in range(4):
        _fork(client, f"p{i}")
    found = client.get("/v1/proofs/inclusion?position=3", headers=R).json()
    at = found.pop("at")
    proof = parse_proof(json.dumps(found))
    assert isinstance(proof, InclusionProof) and proof.holds() and proof.tree_size == at
    grown = client.get("/v1/proofs/consistency?first=2", headers=R).json()
    grown.pop("at")
    growth = parse_proof(json.dumps(grown))
    assert isinstance(growth, ConsistencyProof) and growth.holds()
    for bad in ("inclusion", "inclusion?position=0", "inclusion?position=999",
                "consistency?first=999", "consistency?first=x"):  # fmt: skip
        r = client.get(f"/v1/proofs/{bad}", headers=R)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/proofs/inclusion?position=1").status_code == 401
