"""The changes over HTTP: ``POST /v1/...``, each one command of ``app/commands.py``.

A route's request body is built from its command's signature (``msgspec.defstruct``:
the names and types ``kei mcp serve``'s tools take, and the CLI's options), less what
the path gives (``/v1/agents/{agent_id}/done``: the agent id). The command runs on a
write thread through the same service and domain rules as the CLI, signed by the key
bound to the token (``Grant.key_id``; None: the server's), its batch grouped with the
other requests' (``app/ledger/group_commit.py``). The answer is sent after the commit:
201 with the events appended, or 200 when the command appended nothing (a second
``done``: the message says why).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Final, cast

import msgspec
from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from kei.adapters.http.answers import answer
from kei.adapters.http.backend import Backend
from kei.adapters.http.guard import Guard
from kei.adapters.http.problems import ApiError
from kei.app.commands import Answer, works
from kei.app.services import Services
from kei.domain.log.recorded import RecordedEvent


class Ack(Struct, kw_only=True):
    """What a write answers once its events have committed."""

    at: int
    events: list[dict[str, Any]]
    result: dict[str, Any]


class WriteRoute(Struct, frozen=True):
    """One ``POST`` route: its path, its command, which path parameters fill which
    arguments, and the request body the rest make."""

    path: str
    command: str
    from_path: dict[str, str]
    body: Any  # a msgspec Struct type made from the command's signature
    summary: str


_ROUTES: Final[tuple[tuple[str, str, dict[str, str]], ...]] = (
    ("/v1/agents/{agent_id}/fork", "agent_fork", {"agent_id": "agent_id"}),
    ("/v1/agents/{agent_id}/done", "agent_done", {"agent_id": "agent_id"}),
    ("/v1/agents/{agent_id}/fail", "agent_fail", {"agent_id": "agent_id"}),
    ("/v1/agents/{agent_id}/merged", "agent_merged", {"agent_id": "agent_id"}),
    ("/v1/agents/{agent_id}/outcome", "agent_outcome", {"agent_id": "agent_id"}),
    ("/v1/costs", "cost_record", {}),
    ("/v1/memory", "memory_write", {}),
    ("/v1/routes/outcome", "route_outcome", {}),
    ("/v1/skills/{name}/invocations", "skill_record", {"name": "skill_name"}),
)


def write_routes() -> list[WriteRoute]:
    """Every write route, its body type made from its command's signature."""
    commands = {w.__name__: w for w in works(cast(Services, None))}  # signatures only
    return [_route(path, commands[name], params) for path, name, params in _ROUTES]


def _route(path: str, command: Callable[..., Answer], from_path: dict[str, str]) -> WriteRoute:
    signature = inspect.signature(command, eval_str=True)
    taken = set(from_path.values())
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (p.name, p.annotation) if p.default is inspect.Parameter.empty
        else (p.name, p.annotation, p.default)
        for p in signature.parameters.values() if p.name not in taken
    ]  # fmt: skip
    name = "".join(part.title() for part in command.__name__.split("_")) + "Request"
    body = msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True)
    summary = (command.__doc__ or "").strip().splitlines()[0]
    return WriteRoute(path, command.__name__, from_path, body, summary)


def handler(route: WriteRoute, guard: Guard, backend: Callable[[], Backend]) -> Callable[..., Any]:
    """The endpoint of ``route``: token (write scope), body, command, answer."""

    async def endpoint(request: Request) -> Response:
        grant = await guard.grant(request, "write")
        raw = await guard.body(request)
        args = _arguments(route, raw) | {
            arg: request.path_params[param] for param, arg in route.from_path.items()
        }

        def work(services: Services) -> Answer:
            command = next(w for w in works(services) if w.__name__ == route.command)
            return command(**args)

        result, committed = await backend().write(grant.key_id, work)
        return _ack(result, committed, backend())

    return endpoint


def _arguments(route: WriteRoute, raw: bytes) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(raw or b"{}", type=route.body)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid-body", f"the request body does not fit: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed-body", f"the request body is not JSON: {exc}") from None
    return {f: getattr(body, f) for f in body.__struct_fields__}


def _ack(result: Answer, committed: list[RecordedEvent], backend: Backend) -> Response:
    events = [{"position": e.position, "type": e.type, "stream": e.stream,
               "hash": None if e.hash is None else "sha256:" + e.hash.hex()}
              for e in committed]  # fmt: skip
    at = max((e.position for e in committed), default=0) or backend.reader.store.max_position()
    ack = Ack(at=at, events=events, result=result)
    return answer(msgspec.structs.asdict(ack), status=201 if committed else 200)
