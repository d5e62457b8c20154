"""``/openapi.json`` is a valid OpenAPI 3.1 document that names every route."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate

from kei.adapters.http.writes import write_routes


def test_the_document_validates_and_covers_every_route(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    for path in ("/v1/health", "/v1/events", "/v1/events/stream", "/v1/agents", "/v1/costs",
                 "/v1/costs/series", "/v1/budgets", "/v1/posteriors", "/v1/verify",
                 "/v1/checkpoint"):  # fmt: skip
        assert "get" in doc["paths"][path]
    for route in write_routes():
        op = doc["paths"][route.path]["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].rsplit("/", 1)[1] in doc["components"]["schemas"]
        assert op["x-kei-scope"] == "write" and {"201", "401", "403", "422"} <= set(op["responses"])
    fork = doc["components"]["schemas"]["AgentForkRequest"]
    assert "branch" in fork["required"] and "agent_id" not in fork["properties"]
