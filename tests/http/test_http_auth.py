"""Who may ask what: 401 vs 403 as docs/http.md says, problem details for every error,
and nothing appended for a refused request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from http_server import ADMIN, EXPIRED, READ, REVOKED, WRITE, bearer, running
from kei.adapters.http.guard import RateLimit
from kei.app.ledger.ledger import Ledger
from kei.domain.log.keys import SigningKey

FORK = "/v1/agents/a1/fork"


def _problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert str(body["type"]).startswith("https://kei.dev/problems/")
    assert body["title"] and body["detail"]
    assert "Traceback" not in r.text
    return dict(body)


def _head(url: str) -> int:
    with Ledger.open(url) as ledger:
        return ledger.store.max_position()


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no bearer token"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "malformed"),
        (bearer("tok-nobody"), "unknown"),
        (bearer(REVOKED), "revoked"),
        (bearer(EXPIRED), "expired"),
    ],
)
def test_no_valid_token_is_401_and_appends_nothing(
    client: httpx.Client, ledger_url: str, headers: dict[str, str], why: str
) -> None:
    before = _head(ledger_url)
    for method, path in (("GET", "/v1/agents"), ("POST", FORK)):
        r = client.request(method, path, headers=headers, json={"branch": "main"})
        body = _problem(r, 401)
        assert why in str(body["detail"])
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert _head(ledger_url) == before


def test_a_scope_too_low_is_403_and_appends_nothing(client: httpx.Client, ledger_url: str) -> None:
    before = _head(ledger_url)
    r = client.post(FORK, headers=bearer(READ), json={"branch": "main"})
    assert "scope read" in str(_problem(r, 403)["detail"])
    assert _head(ledger_url) == before
    for token in (READ, WRITE, ADMIN):
        assert client.get("/v1/agents", headers=bearer(token)).status_code == 200
    assert client.post(FORK, headers=bearer(ADMIN), json={"branch": "main"}).status_code == 201


def test_token_says_what_it_grants(client: httpx.Client) -> None:
    got = client.get("/v1/token", headers=bearer(WRITE)).json()
    assert got == {"token_id": "writer", "name": "writer", "scope": "write", "key_id": None,
                   "expires_at": None}  # fmt: skip
    _problem(client.get("/v1/token"), 401)


def test_health_and_openapi_need_no_token(client: httpx.Client) -> None:
    assert client.get("/v1/health").json()["ok"] is True
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_every_error_is_a_problem(client: httpx.Client) -> None:
    _problem(client.get("/v1/nothing-here", headers=bearer(READ)), 404)
    _problem(client.delete("/v1/agents", headers=bearer(ADMIN)), 405)
    _problem(client.post(FORK, headers=bearer(WRITE), content=b"{not json"), 400)
    _problem(client.post(FORK, headers=bearer(WRITE), json={"branch": 3}), 422)
    _problem(client.post(FORK, headers=bearer(WRITE), json={"branch": "m", "bogus": 1}), 422)
    _problem(client.get("/v1/costs?by=colour", headers=bearer(READ)), 422)
    _problem(client.get("/v1/events?after=x", headers=bearer(READ)), 422)
    _problem(client.post("/v1/agents/ghost/done", headers=bearer(WRITE),
                         json={"summary": "s"}), 404)  # fmt: skip


def test_a_body_over_the_limit_is_413(ledger_url: str, key: SigningKey, tmp_path: Path) -> None:
    with running(ledger_url, key, tmp_path, max_body=100) as base, httpx.Client(base_url=base) as c:
        big = {"branch": "x" * 200}
        _problem(c.post(FORK, headers=bearer(WRITE), json=big), 413)
        chunks = (b'{"branch": "' + b"y" * 50 for _ in range(4))  # no Content-Length
        _problem(c.post(FORK, headers=bearer(WRITE), content=chunks), 413)
    assert _head(ledger_url) == 1


def test_a_token_over_its_rate_is_429(ledger_url: str, key: SigningKey, tmp_path: Path) -> None:
    limit = RateLimit(rate=0.5, burst=3)
    with running(ledger_url, key, tmp_path, rate=limit) as base, httpx.Client(base_url=base) as c:
        codes = [c.get("/v1/agents", headers=bearer(READ)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        r = c.get("/v1/agents", headers=bearer(READ))
        _problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/v1/agents", headers=bearer(WRITE)).status_code == 200  # its own bucket
