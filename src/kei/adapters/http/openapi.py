"""``GET /openapi.json``: the OpenAPI 3.1 document of ``/v1``, made from the routes.

Request bodies and the answers kei defines itself are msgspec Structs, so their
schemas come from ``msgspec.json.schema_components`` (the same types decode the
requests: the document cannot drift from what the server accepts). Answers that are
the CLI's ``--json`` objects are described as objects carrying ``at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from msgspec import Struct

from kei.adapters.http.problems import MEDIA, ProblemBody
from kei.adapters.http.writes import Ack, WriteRoute

REF: Final = "#/components/schemas/{name}"
_AT: Final = {"type": "object", "required": ["at"], "properties": {"at": {"type": "integer"}}}
_AUTH_ERRORS: Final = {"401": "no valid token", "403": "the token's scope is too low",
                       "429": "the token's rate limit"}  # fmt: skip


class Health(Struct, kw_only=True):
    ok: bool
    version: str


class Finding(Struct, kw_only=True):
    kind: str
    position: int | None
    detail: str


class VerifyStatus(Struct, kw_only=True):
    at: int
    ok: bool
    verified_up_to: int
    verified_at: str | None
    head_hash: str | None
    findings: list[Finding]
    omitted: int


class Read(Struct, frozen=True):
    """One GET route for the document: path, scope (None: open), summary, answer."""

    path: str
    scope: str | None
    summary: str
    answer: Any = None  # a Struct type, or None: an object with ``at``
    media: str = "application/json"
    query: Sequence[str] = ()


class TokenInfo(Struct, kw_only=True):
    """``GET /v1/token``: what the bearer token grants (a client checks its token)."""

    token_id: str
    name: str
    scope: str
    key_id: str | None
    expires_at: str | None


TOKEN: Final = Read("/v1/token", "read", "What the bearer token grants.", TokenInfo)


def document(reads: Sequence[Read], writes: Sequence[WriteRoute], version: str) -> dict[str, Any]:
    types = [ProblemBody, Ack, *(r.answer for r in reads if r.answer), *(w.body for w in writes)]
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    paths: dict[str, Any] = {}
    for r in reads:
        paths.setdefault(r.path, {})["get"] = _read_op(r)
    for w in writes:
        paths.setdefault(w.path, {})["post"] = _write_op(w)
    return {
        "openapi": "3.1.0",
        "info": {"title": "kei", "version": version,
                 "description": "kei's signed, hash-chained event log over HTTP (docs/http.md)."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }  # fmt: skip


def _ref(t: Any) -> dict[str, str]:
    return {"$ref": REF.format(name=t.__name__)}


def _problems(statuses: dict[str, str]) -> dict[str, Any]:
    body = {"content": {MEDIA: {"schema": _ref(ProblemBody)}}}
    return {code: {"description": why, **body} for code, why in statuses.items()}


def _params(names: Sequence[str], path: str) -> list[dict[str, Any]]:
    found = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
             for n in names]  # fmt: skip
    for part in path.split("/"):
        if part.startswith("{"):
            found.append({"name": part[1:-1], "in": "path", "required": True,
                          "schema": {"type": "string"}})  # fmt: skip
    return found


def _read_op(r: Read) -> dict[str, Any]:
    schema = (
        _ref(r.answer)
        if r.answer
        else ({"type": "string"} if r.media != "application/json" else _AT)
    )
    op: dict[str, Any] = {
        "summary": r.summary,
        "parameters": _params(r.query, r.path),
        "responses": {"200": {"description": "OK", "content": {r.media: {"schema": schema}}},
                      **_problems({"422": "a bad parameter", "500": "an internal error"})},
    }  # fmt: skip
    if r.scope is not None:
        op["security"] = [{"bearer": []}]
        op["x-kei-scope"] = r.scope
        op["responses"].update(_problems(_AUTH_ERRORS))
    return op


def _write_op(w: WriteRoute) -> dict[str, Any]:
    ack = {"content": {"application/json": {"schema": _ref(Ack)}}}
    return {
        "summary": w.summary,
        "security": [{"bearer": []}],
        "x-kei-scope": "write",
        "parameters": _params((), w.path),
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": _ref(w.body)}}},
        "responses": {
            "201": {"description": "appended and committed", **ack},
            "200": {"description": "nothing to append (the result says why)", **ack},
            **_problems({**_AUTH_ERRORS, "400": "the body is not JSON",
                         "404": "an unknown agent", "409": "a domain rule refused it",
                         "413": "the body is too large", "422": "the body does not fit",
                         "503": "the store is busy or unavailable"}),
        },
    }  # fmt: skip
