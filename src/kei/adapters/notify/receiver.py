"""``http.server`` glue for Twilio status callbacks: :func:`.callbacks.handle` decides.

A ``ThreadingHTTPServer`` (stdlib: no new dependency) whose handler passes the request
line, headers and a bounded body reader to ``handle`` and writes its :class:`Reply`
back, closing the connection after each answer (HTTP/1.0), with a socket timeout so a
slow client cannot hold a thread. ``record`` runs under one lock: the ledger session
behind it is not shared between threads. Nothing here prints; it logs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from kei.adapters.notify.callbacks import Callback, Record, Recorded, Reply, handle
from kei.adapters.notify.sms import SmsChannel

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S: Final = 10.0


class CallbackServer(ThreadingHTTPServer):
    """Serves ``POST /twilio/<channel>`` for ``receivers`` on ``address``."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], receivers: Mapping[str, SmsChannel], record: Record
    ) -> None:
        super().__init__(address, _Handler)
        self.receivers = dict(receivers)
        self._record, self._lock = record, threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port``: where it listens (not the public URL Twilio signs)."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, callback: Callback) -> Recorded:
        with self._lock:
            return self._record(callback)

    def answer(self, handler: _Handler) -> Reply:
        """``handle`` for one request; an error in recording is a 503, logged."""
        try:
            return handle(handler.command, handler.path, list(handler.headers.items()),
                          handler.rfile.read, self.receivers, self.record)  # fmt: skip
        except Exception as error:  # a broken chain, a database gone: Twilio may retry
            log.error("twilio callback %s: %s", handler.path[:80], error)
            return Reply(503, "not recorded, try again later")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or timed out: a log line, not a traceback on stderr."""
        del request
        log.info("twilio callback from %s: connection dropped", client_address[0])


class _Handler(BaseHTTPRequestHandler):
    server: CallbackServer
    timeout = SOCKET_TIMEOUT_S
    server_version = "kei"
    sys_version = ""

    def _serve(self) -> None:
        reply = self.server.answer(self)
        raw = (reply.text + "\n").encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:  # 405 (or 404): only POST is served
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("twilio callback: " + format, *args)
