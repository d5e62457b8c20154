"""A stand-in for ``kei serve`` that the dashboard tests drive a browser against.

``CannedApi`` serves the dashboard's own ``routes()`` beside canned ``/v1`` answers
shaped as docs/http.md says (the money and moments put through the CLI's
``json_object``, so they have the CLI's exact form), checks the bearer token as the
server will (401 problem details), records every request it is sent, and lets a test
push an event into the live stream, drop the streams (the page must resume with
``Last-Event-ID``) and turn ``/v1/verify`` into a finding; ``CannedApi(empty=True)``
answers as a log just initialised does. ``serving(app)`` runs an app
with uvicorn on a free loopback port in a thread. Imported by name (tests/helpers is
on the path).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kei.adapters.http.dashboard import routes
from kei.app.json_form import json_object, rfc3339
from kei.domain.routing.posterior import Beta

TOKEN = "kei_read_0123456789abcdef"
DAY_US = 86_400_000_000
T0_US = 1_796_688_000_000_000  # 2026-12-08T00:00:00Z
HEAD = 42


def _us(day: int, hour: int = 0) -> int:
    return T0_US + day * DAY_US + hour * 3_600_000_000


def _agent(agent_id: str, parent: str | None, status: str, mc: int, **more: Any) -> dict[str, Any]:
    return json_object({
        "agent_id": agent_id, "parent_agent_id": parent, "branch": f"agent/{agent_id}",
        "status": status, "forked_us": _us(-2, len(agent_id) % 12),
        "ended_us": None if status == "running" else _us(-1), "cost_micro_cents": mc,
        "summary": more.get("summary"),
    })  # fmt: skip


# (agent_id, parent, status, micro-cents): a tree of depth three and a lone root
AGENTS = [
    _agent("lead", None, "running", 125_000_000, summary="Orchestrates the auth fix"),
    _agent("fix-auth", "lead", "done", 41_780_000, summary="Token refresh fixed"),
    _agent("write-tests", "lead", "failed", 210_000),
    _agent("lint", "fix-auth", "merged", 600_000),
    _agent("solo", None, "done", 0),
]

# the day series: (day, {model: micro-cents}); one model is absent on the first day
SERIES = [
    ("2026-12-06", {"claude-sonnet-4-6": 90_000_000, "gpt-5": 12_500_000}),
    ("2026-12-07", {"claude-sonnet-4-6": 130_000_000, "claude-haiku-4-5": 600_000,
                    "gpt-5": 40_000_000}),
    ("2026-12-08", {"claude-haiku-4-5": 2_178_000, "claude-sonnet-4-6": 55_000_000}),
]  # fmt: skip


def _budget(name: str, scope: str, period: str, key: str, limit: int, spent: int,
            forecast: int | None) -> dict[str, Any]:  # fmt: skip
    return json_object({
        "budget": name, "scope": scope, "period": period, "period_key": key,
        "started_us": T0_US, "ended_us": T0_US + DAY_US, "limit_micro_cents": limit,
        "spent_micro_cents": spent, "percent": round(spent * 100 / limit, 2),
        "remaining_micro_cents": limit - spent, "forecast_micro_cents": forecast,
        "events": 12, "unpriced_events": 0, "speed_unpriced_events": 0,
        "speed_unpriced_models": {}, "crossed": [50] if spent * 2 >= limit else [],
        "unrecorded": [],
    })  # fmt: skip


BUDGETS = [
    _budget("daily", "all", "day", "2026-12-08", 250_000_000, 57_178_000, 171_534_000),
    _budget("december", "all", "month", "2026-12", 6_000_000_000, 330_278_000, 2_046_000_000),
    _budget("app-daily", "project:/srv/app", "day", "2026-12-08", 25_000_000_000, 0, 0),
    _budget("lead-tree", "tree:lead", "total", "total", 500_000_000, 167_590_000, None),
]


def _posterior(task_class: str, model: str, successes: int, failures: int) -> dict[str, Any]:
    b = Beta.from_counts(successes, failures)
    return {"task_class": task_class, "model": model, "alpha": b.alpha, "beta": b.beta,
            "n": b.n, "mean": b.mean, "lower_bound": b.lower_bound(0.10)}  # fmt: skip


POSTERIORS = [
    _posterior("code-fix", "claude-sonnet-4-6", 18, 2),
    _posterior("code-fix", "claude-haiku-4-5", 5, 5),
    _posterior("summarise", "claude-haiku-4-5", 30, 1),
]

VERIFIED = {"ok": True, "verified_up_to": HEAD, "verified_at": rfc3339(_us(0, 9)),
            "findings": []}  # fmt: skip
FINDING = {"kind": "content-changed", "position": 17,
           "detail": "the stored payload differs from the one that was signed"}  # fmt: skip


def event(position: int, prev_hash: str | None, type_: str = "cost.recorded") -> dict[str, Any]:
    """An event object as ``kei events tail --json`` prints it, chained to ``prev_hash``."""
    digest = hashlib.sha256(f"{position}:{prev_hash}:{type_}".encode()).hexdigest()
    return {
        "position": position, "seq": position, "time": rfc3339(_us(0, 8) + position * 1_000_000),
        "type": type_, "stream": f"agent-lead-{position % 3}", "version": position,
        "schema_version": 5, "key_id": "ed25519:5c1f0e", "payload": {"agent_id": "lead"},
        "prev_hash": prev_hash, "hash": f"sha256:{digest}", "signature": "ed25519:00",
    }  # fmt: skip


def series_answer(split: str) -> dict[str, Any]:
    """The /v1/costs/series answer (split by agent: one canned agent per model)."""
    rename = {"claude-sonnet-4-6": "lead", "claude-haiku-4-5": "fix-auth", "gpt-5": "lint"}
    rows = [
        {"bucket": day, "values": {
            (rename[m] if split == "agent" else m): {"micro_cents": mc, "usd": usd_of(mc)}
            for m, mc in values.items()}}
        for day, values in SERIES
    ]  # fmt: skip
    return {"at": HEAD, "bucket": "day", "split": split, "series": rows, "budgets": BUDGETS}


def usd_of(mc: int) -> str:
    return str(json_object({"x_micro_cents": mc})["x_usd"])


@dataclass
class Seen:
    """One request as the fixture received it."""

    path: str
    query: str
    authorization: str | None
    last_event_id: str | None


@dataclass
class CannedApi:
    """The canned ``/v1`` state; every method may be called from the test's thread."""

    empty: bool = False  # a log just initialised: no agent, cost, budget or outcome
    events: list[dict[str, Any]] = field(default_factory=list)
    verify_answer: dict[str, Any] = field(default_factory=lambda: dict(VERIFIED))
    seen: list[Seen] = field(default_factory=list)
    drops: int = 0
    closing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for _ in range(1 if self.empty else HEAD):
            self.push("ledger.genesis" if self.empty else "cost.recorded")
        if self.empty:
            self.verify_answer["verified_up_to"] = 1

    def push(self, type_: str = "cost.recorded") -> dict[str, Any]:
        """Append the next event (chained to the last); the streams send it."""
        with self.lock:
            prev = self.events[-1]["hash"] if self.events else None
            e = event(len(self.events) + 1, prev, type_)
            self.events.append(e)
        return e

    def drop_streams(self) -> None:
        """End every open event stream, as a restarting server or a proxy would."""
        with self.lock:
            self.drops += 1

    def find(self, finding: dict[str, Any]) -> None:
        """From now on ``/v1/verify`` reports ``finding``."""
        with self.lock:
            self.verify_answer = {**self.verify_answer, "ok": False, "findings": [finding]}

    def head(self) -> int:
        with self.lock:
            return len(self.events)

    def after(self, position: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.events[position:]

    # --- the app -------------------------------------------------------------------

    def app(self) -> Starlette:
        none = self.empty

        def series(r: Request) -> dict[str, Any]:
            answer = series_answer(r.query_params.get("split", "model"))
            return {**answer, "series": [], "budgets": []} if none else answer

        answers = {
            "/v1/agents": lambda r: {"agents": [] if none else AGENTS},
            "/v1/costs/series": series,
            "/v1/budgets": lambda r: {
                "measured_at": rfc3339(_us(0, 9)),
                "budgets": [] if none else BUDGETS,
            },
            "/v1/posteriors": lambda r: {"posteriors": [] if none else POSTERIORS},
            "/v1/verify": lambda r: {**self.verify_answer, "head_hash": self.events[-1]["hash"]},
        }

        def read(path: str) -> Route:
            async def answer(request: Request) -> Response:
                refused = self._refused(request)
                if refused is not None:
                    return refused
                return JSONResponse({"at": self.head(), **answers[path](request)})

            return Route(path, answer)

        own = [read(p) for p in answers]
        own.append(Route("/v1/events/stream", self._stream))
        return Starlette(routes=[*routes(), *own])

    def _refused(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization")
        with self.lock:
            self.seen.append(Seen(request.url.path, request.url.query, auth,
                                  request.headers.get("last-event-id")))  # fmt: skip
        if auth == f"Bearer {TOKEN}":
            return None
        problem = {"type": "https://kei.dev/problems/unauthorized", "title": "Unauthorized",
                   "status": 401, "detail": "the bearer token is unknown; create one with "
                   "kei tokens create NAME --scope read"}  # fmt: skip
        return JSONResponse(problem, status_code=401, media_type="application/problem+json")

    async def _stream(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        resume = request.headers.get("last-event-id") or request.query_params.get("after")
        start = int(resume) if resume else self.head()
        with self.lock:
            generation = self.drops

        async def body() -> AsyncIterator[str]:
            sent = start
            yield ": kei stream\n\n"
            while not self.closing and self.drops == generation:
                for e in self.after(sent):
                    yield f"id: {e['position']}\nevent: kei.event\ndata: {json.dumps(e)}\n\n"
                    sent = e["position"]
                await asyncio.sleep(0.02)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


@contextmanager
def serving(app: Starlette, lifespan: str = "off") -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL
    (``lifespan="on"``: the app's startup and shutdown run, as ``kei serve``'s must)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan=lifespan, timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-fixture", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fixture server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
