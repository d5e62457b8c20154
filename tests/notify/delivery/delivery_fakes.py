"""A real HTTP provider on 127.0.0.1 and a small channel that posts to it.

Until the shared fake providers (``tests/notify/fakes/``) and the real channels land,
the delivery tests use these: ``FakeProvider`` is a ``ThreadingHTTPServer`` that
counts every POST it receives *when it receives it* (before answering), answers from a
script (ok, 429 with Retry-After, 400, 500, a slow answer, a reset connection) and can
hold a request until the test releases it, which is where a crash test kills the
notifier. ``PostChannel`` speaks the ``Channel`` protocol over httpx: JSON body, a
timeout, failures classified as the real channels classify them.

``python delivery_fakes.py DB SEED PROVIDER_URL CONFIG_JSON`` runs ``kei notify run``'s
loop in a child process with that channel, for the crash and race tests.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from kei.domain.notify import Delivered, Failed, Notification, SendOutcome, Severity

HOLD_S = 30.0


class FakeProvider:
    """The provider: ``received`` holds every request body, in arrival order, and
    ``arrived`` the wall-clock time of each (``GET /`` answers the count)."""

    def __init__(self, default: str = "ok") -> None:
        self.received: list[bytes] = []
        self.arrived: list[float] = []
        self.script: deque[str] = deque()
        self.default = default
        self.held = threading.Event()  # a request is being held now
        self.release = threading.Event()
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                raw = json.dumps({"received": provider.count}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with provider.lock:
                    provider.arrived.append(time.time())
                    provider.received.append(body)
                    n = len(provider.received)
                    mode = provider.script.popleft() if provider.script else provider.default
                provider.answer(self, mode, n)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/T000/B000/secretpath"

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def subjects(self) -> list[str]:
        with self.lock:
            return [json.loads(b)["subject"] for b in self.received]

    def answer(self, h: BaseHTTPRequestHandler, mode: str, n: int) -> None:
        if mode == "hold":
            self.held.set()
            self.release.wait(HOLD_S)
            mode = "ok"
        if mode == "reset":
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        if mode == "slow":
            time.sleep(2.0)
            mode = "ok"
        status, body, headers = {
            "ok": (200, {"ok": True, "id": f"m-{n}"}, {}),
            "429": (429, {"ok": False, "error": "rate_limited"}, {"Retry-After": "1"}),
            "400": (400, {"ok": False, "error": "invalid_payload"}, {}),
            "500": (500, {"ok": False, "error": "oops"}, {}),
        }[mode]
        raw = json.dumps(body).encode()
        h.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)


class PostChannel:
    """A ``Channel`` posting ``{"subject", "body", "severity"}`` as JSON to ``url``."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        kind: str = "slack",
        min_severity: Severity = "info",
        min_interval_s: float = 0.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._name, self._kind, self._url = name, kind, url
        self._min, self._interval = min_severity, min_interval_s
        self._client = httpx.Client(timeout=timeout_s)

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def min_severity(self) -> Severity:
        return self._min

    @property
    def min_interval_s(self) -> float:
        return self._interval

    def request_bytes(self, notification: Notification) -> bytes:
        body = {"subject": notification.subject, "body": notification.body_text,
                "severity": notification.severity}  # fmt: skip
        return json.dumps(body, sort_keys=True).encode()

    def send(self, notification: Notification) -> SendOutcome:
        started = time.perf_counter_ns()

        def us() -> int:
            return (time.perf_counter_ns() - started) // 1000

        try:
            r = self._client.post(self._url, content=self.request_bytes(notification),
                                  headers={"Content-Type": "application/json"})  # fmt: skip
        except httpx.TimeoutException as exc:  # after the request went out: in doubt
            sent = not isinstance(exc, httpx.ConnectTimeout)
            return Failed(failure_class="timeout", retryable=True, error="timed out",
                          in_doubt=sent, latency_us=us())  # fmt: skip
        except httpx.HTTPError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            return Failed(failure_class="transport", retryable=True, in_doubt=sent,
                          error=f"transport: {type(exc).__name__}", latency_us=us())  # fmt: skip
        if r.status_code == 200:
            return Delivered(http_status=200, receipt=str(r.json().get("id", "")), latency_us=us())
        if r.status_code == 429:
            after = r.headers.get("Retry-After")
            return Failed(failure_class="rate_limited", retryable=True, http_status=429,
                          error="rate limited", retry_after_raw=after,
                          retry_after_ms=int(float(after or 1) * 1000), latency_us=us())  # fmt: skip
        retryable = r.status_code >= 500
        return Failed(failure_class="rejected", retryable=retryable, http_status=r.status_code,
                      error=f"provider said {r.status_code}: {r.text[:200]}", latency_us=us())  # fmt: skip

    def close(self) -> None:
        self._client.close()


def child_main(argv: list[str]) -> None:
    """The notifier in a child process: ``DB SEED PROVIDER_URL CONFIG_JSON``."""
    from kei import Ledger, SigningKey
    from kei.app.notify.config import parse_config
    from kei.app.notify.runner import Runner
    from kei.app.notify.service import NotifyService

    url, seed, provider_url, raw = argv
    options = json.loads(raw)
    channel = PostChannel(options.get("channel", "chat"), provider_url,
                          kind=options.get("kind", "slack"))  # fmt: skip
    channels = {channel.name: channel}
    config = parse_config(options.get("config", {}), "notify.toml", channels)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Ledger.open(url, key=SigningKey(bytes.fromhex(seed), name="default")) as ledger:
        service = NotifyService(ledger, channels, config, stop=stop)
        print("ready", flush=True)
        report = Runner(service, stop).run(once=bool(options.get("once")),
                                            from_start=bool(options.get("from_start")))  # fmt: skip
        service.close()
    print("done", report.requested, report.sent, flush=True)


def serve_main() -> None:
    """``python delivery_fakes.py --serve``: a provider in its own process (benchmarks),
    its URL on the first line of stdout, until stdin closes."""
    with FakeProvider() as p:
        print(p.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve_main()
    else:
        child_main(sys.argv[1:])
