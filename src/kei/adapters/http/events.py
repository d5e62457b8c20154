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
ANCHOR: Final = 64  # how far back a resume point in a gap looks for the event to link to


def follower_after(backend: Backend, after: int | None) -> LogFollower:
    """A follower handing over the events after position ``after`` (None: the head),
    the first checked against the last event at or before ``after`` (positions may
    have gaps); 422 when ``after`` is past the head."""
    store = backend.reader.store
    head = store.max_position()
    after = head if after is None else max(0, after)
    if after > head:
        raise ApiError(
            422, "unknown-position",
            f"position {after} is past the log's head ({head}); resume after a position "
            "the log holds (an event's id or an answer's at), or from 0",
        )  # fmt: skip
    if after == 0:
        return LogFollower(store)
    low = after
    while low > 0:  # windows of ANCHOR positions back, until one holds an event
        low = max(0, low - ANCHOR)
        before = store.read(after=low, upto=after, limit=ANCHOR)
        if before:
            return LogFollower(store, link_of(before[-1]), position=after)
    return LogFollower(store, position=after)


def _line(record: StoredRecord) -> bytes:
    return encode(event_dict(RecordedEvent.from_record(record)))


def _break(follower: LogFollower) -> dict[str, Any]:
    assert follower.broken is not None
    return follower.broken.first.to_dict()


async def ndjson(request: Request, backend: Backend) -> Response:
    after = integer(request, "after", 0, least=-(1 << 62)) or 0
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


def _resume_point(request: Request) -> int | None:
    """``Last-Event-ID``, else ``after``, else None (the head: new events only)."""
    last = request.headers.get("last-event-id")
    if last is None or last == "":
        return integer(request, "after", None, least=-(1 << 62))
    if not last.isdigit():
        raise ApiError(422, "invalid-parameter", f"Last-Event-ID must be a position, got {last!r}")
    return int(last)


async def sse(request: Request, backend: Backend) -> Response:
    after = _resume_point(request)
    follower = await backend.blocking(lambda: follower_after(backend, after))

    async def frames() -> AsyncIterator[bytes]:
        yield b": kei\nretry: 1000\n\n"
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

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
