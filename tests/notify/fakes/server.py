"""The plumbing every fake provider shares: a real HTTP server on 127.0.0.1, a record of
what it received, failure modes, and a hold that keeps requests waiting.

A provider (``slack.py``, ``discord.py``, ...) only says how it answers one request in
one mode (:meth:`FakeServer.reply`). This base does the rest:

- every request is appended to :attr:`FakeServer.received` *when it arrives*, before any
  answer, so a test can wait for it (:meth:`FakeServer.wait_for`) and then kill the
  client while the server still holds it;
- :meth:`FakeServer.hold` makes every later request wait, after it is recorded, until
  :meth:`FakeServer.release` (or :meth:`FakeServer.close`);
- modes the base plays itself: ``slow`` (record, then answer only after
  :attr:`FakeServer.slow_s`, so the client times out) and ``reset`` (record, then cut
  the connection with a TCP reset, no answer); every other mode is the provider's;
- :meth:`FakeServer.script` queues modes for the next requests, one each, before
  :attr:`FakeServer.mode` applies again (e.g. ``script("rate_limited", "ok")``).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import msgspec

MODES_ALL = ("ok", "reject", "auth", "rate_limited", "server_error", "echo", "slow", "reset")
"""Modes every fake knows; ``echo`` refuses with an error body that repeats everything
the client sent (path, query, headers, body), to prove a channel scrubs its secrets."""


_KNOWN = frozenset(s.value for s in HTTPStatus)


class Received(msgspec.Struct, frozen=True):
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The form fields (a repeated field keeps its last value)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def echo(self) -> str:
        """What the client sent that could hold a secret (request line, credentials,
        body), as one text short enough to survive a channel's one-line cut (``echo``)."""
        auth = self.headers.get("authorization", "")
        target = self.path + ("?" + "&".join(f"{k}={v}" for k, v in self.query.items()))
        return f"{self.method} {target} {auth} {self.body.decode('utf-8', 'replace')}"


class Reply(msgspec.Struct, frozen=True):
    """What the fake answers: status, headers, body (JSON when not bytes)."""

    status: int
    body: Any = b""
    headers: dict[str, str] = {}

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        del format, args

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_GET(self) -> None:
        self.server.fake._serve(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the fake reset on purpose, or a client that gave up: no traceback."""
        del request, client_address


class FakeServer:
    """A fake provider in a thread on ``127.0.0.1:0``; a context manager."""

    name = "fake"

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.mode = "ok"
        self.slow_s = 30.0
        self.retry_after: float | str = 1
        self._script: deque[str] = deque()
        self._lock = threading.Condition()
        self._open = threading.Event()
        self._open.set()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # -- for tests ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """What a channel is configured with: a webhook's URL, or an API base."""
        return self.base_url

    def script(self, *modes: str) -> None:
        """Answer the next requests in these modes, one each, then :attr:`mode` again."""
        with self._lock:
            self._script.extend(modes)

    def hold(self) -> None:
        """Keep every request from now on waiting (recorded, unanswered) until release."""
        self._open.clear()

    def release(self) -> None:
        """Let held requests (and later ones) be answered."""
        self._open.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The received requests once there are at least ``count`` (AssertionError if not
        within ``timeout`` seconds)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{self.name}: {len(self.received)} requests, not {count}")
            return list(self.received)

    def close(self) -> None:
        self._closing.set()
        self._open.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for providers -----------------------------------------------------------------

    def reply(self, request: Received, mode: str) -> Reply:
        """The provider's answer to ``request`` in ``mode``."""
        raise NotImplementedError

    # -- plumbing ----------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Received(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        with self._lock:
            self.received.append(request)
            mode = self._script.popleft() if self._script else self.mode
            self._lock.notify_all()
        self._open.wait()
        if mode == "slow":
            self._closing.wait(self.slow_s)
            mode = "ok"
        if mode == "reset" or self._closing.is_set():
            self._reset(handler)
            return
        self._send(handler, self.reply(request, mode))

    @staticmethod
    def _send(handler: _Handler, reply: Reply) -> None:
        """The whole answer in one write (headers and body apart would meet Nagle's
        algorithm and delayed ACKs: 40 ms a request)."""
        body, content_type = reply.encoded()
        phrase = HTTPStatus(reply.status).phrase if reply.status in _KNOWN else ""
        head = [f"HTTP/1.1 {reply.status} {phrase}", f"Content-Type: {content_type}"]
        head += [f"{key}: {value}" for key, value in reply.headers.items()]
        head.append(f"Content-Length: {len(body)}")
        try:
            handler.wfile.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
            handler.wfile.flush()
        except OSError:  # the client gave up (a timeout): nothing to answer
            handler.close_connection = True

    @staticmethod
    def _reset(handler: _Handler) -> None:
        """Close with a TCP reset: SO_LINGER on, zero seconds."""
        sock = handler.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True
        sock.close()
