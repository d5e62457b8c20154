"""The log itself over HTTP: ``/v1/events`` as NDJSON, ``/v1/events/stream`` as SSE.

Both read through a ``LogFollower`` (``adapters/store/follow.py``): only events whose
link and hash check against the one before are sent, each as the object ``kei events
tail --json`` prints (position, hashes and signature included, so a client can check
the chain itself). At a break both stop after saying so: NDJSON with a last line
``{"break": {"kind", "position", "detail"}}``, SSE with an ``event: kei.break``.

The SSE stream sends each event with its position as ``id``, so a client that
reconnects with ``Last-Event-ID`` resumes after it; between pages it waits for the
next commit of this server (or polls, for writers elsewhere) and sends a comment line
every ``KEEPALIVE`` seconds so proxies keep the connection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kei.adapters.http.answers import encode
from kei.adapters.http.backend import Backend
from kei.adapters.http.params import integer
from kei.adapters.http.problems import ApiError
from kei.adapters.store.follow import LogFollower, link_of
from kei.app.ledger.tail import event_dict
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord

PAGE: Final = 500
POLL: Final = 0.5  # seconds between looks at the store for other writers' events
KEEPALIVE: Final = 15.0


def follower_after(backend: Backend, after: int) -> LogFollower:
    """A follower handing over the events after position ``after``, the first checked
    against the event at ``after``; 422 when the log holds none there."""
    store = backend.reader.store
    if after <= 0:
        return LogFollower(store)
    at = store.read(after=after - 1, limit=1)
    if not at or at[0].position != after:
        raise ApiError(
            422, "unknown-position",
            f"the log holds no event at position {after}; resume after a position it holds "
            "(an event's id or an answer's at), or from 0",
        )  # fmt: skip
    return LogFollower(store, link_of(at[0]))


def _line(record: StoredRecord) -> bytes:
    return encode(event_dict(RecordedEvent.from_record(record)))


def _break(follower: LogFollower) -> dict[str, Any]:
    assert follower.broken is not None
    return follower.broken.first.to_dict()


async def ndjson(request: Request, backend: Backend) -> Response:
    after = integer(request, "after", 0) or 0
    limit = integer(request, "limit", None, least=1)
    follower = await backend.blocking(lambda: follower_after(backend, after))

    async def lines() -> AsyncIterator[bytes]:
        left = limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            page = await backend.blocking(partial(follower.read, size))
            if page:
                yield b"".join(_line(r) + b"\n" for r in page)
                left = None if left is None else left - len(page)
            if follower.broken is not None:
                yield encode({"break": _break(follower)}) + b"\n"
                return
            if not page:
                return

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _resume_point(request: Request) -> int:
    last = request.headers.get("last-event-id")
    if last is None or last == "":
        return integer(request, "after", 0) or 0
    if not last.isdigit():
        raise ApiError(422, "invalid-parameter", f"Last-Event-ID must be a position, got {last!r}")
    return int(last)


async def sse(request: Request, backend: Backend) -> Response:
    after = _resume_point(request)
    follower = await backend.blocking(lambda: follower_after(backend, after))

    async def frames() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        quiet_since = time.monotonic()
        while True:
            page = await backend.blocking(lambda: follower.read(PAGE))
            for r in page:
                yield b"id: %d\nevent: kei.event\ndata: %s\n\n" % (r.position, _line(r))
            if follower.broken is not None:
                yield b"event: kei.break\ndata: %s\n\n" % encode(_break(follower))
                return
            if page:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since >= KEEPALIVE:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await backend.wakeup.wait(POLL)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
