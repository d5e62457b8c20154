"""Real HTTP servers on 127.0.0.1 that speak Ollama's and llama-server's protocols.

Each server runs an ``http.server.ThreadingHTTPServer`` on port 0 in a thread and
answers as the real one does (documented JSON fields, NDJSON or SSE streaming with
chunked transfer encoding). ``mode`` switches a server into a failure:

- ``ok``: answer normally;
- ``404`` / ``500``: an HTTP error with the server's own error body;
- ``drop``: send the headers and the first piece of a stream, then cut the connection;
- ``error-line``: stream a piece, then the server's in-stream error object;
- ``hang``: read the request, then never answer (until the server is closed);
- ``loading`` (llama-server ``/health`` only): 503 while "loading the model".

``SilentServer`` accepts TCP connections (the kernel's backlog does) but never reads or
answers. Every request is kept in ``requests`` as ``(method, path, json body)``.
"""

from __future__ import annotations

import json
import socket
import stat
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

MS = 1_000_000  # nanoseconds in a millisecond (Ollama's durations are nanoseconds)


@dataclass
class Behaviour:
    mode: str = "ok"
    reply: tuple[str, ...] = ("Hel", "lo", " world")
    models: tuple[str, ...] = ("llama3:8b", "llama3:70b")
    cached_prompt: bool = False  # Ollama then leaves prompt_eval_count out
    prompt_tokens: int = 12
    paths: tuple[str, ...] = ()  # the failure mode applies to these paths only (empty: all)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def failing(self, path: str) -> str:
        return self.mode if not self.paths or path in self.paths else "ok"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        del format, args

    # -- plumbing ----------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET", None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._dispatch("POST", json.loads(raw) if raw else None)

    def _dispatch(self, method: str, body: Any) -> None:
        path = self.path.split("?", 1)[0]
        self.server.behaviour.requests.append((method, path, body))
        mode = self.server.behaviour.failing(path)
        if mode == "hang":
            self.server.release.wait(timeout=60)
            self.close_connection = True
            return
        route = self.routes.get((method, path))
        if route is None:
            self.send_json(404, {"error": "404 page not found"})
            return
        route(self, body or {}, mode)

    def send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Cut the connection mid-answer, as a crashing server would."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    routes: ClassVar[dict[tuple[str, str], Any]] = {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[_Handler], behaviour: Behaviour, port: int) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.behaviour = behaviour
        self.release = threading.Event()


class FakeServer:
    """A protocol server in a thread; use as a context manager or call ``close``."""

    handler: ClassVar[type[_Handler]]

    def __init__(self, behaviour: Behaviour | None = None, *, port: int = 0) -> None:
        self.behaviour = behaviour or Behaviour()
        self._server = _Server(self.handler, self.behaviour, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[tuple[str, str, Any]]:
        return self.behaviour.requests

    def close(self) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve_until_terminated(self) -> None:
        """Run in the foreground until SIGTERM (a fake ``llama-server`` binary uses this)."""
        import signal

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
        self.close()


# -- Ollama ----------------------------------------------------------------------------


def _ollama_counters(b: Behaviour) -> dict[str, Any]:
    counters: dict[str, Any] = {
        "done_reason": "stop",
        "total_duration": 5_123_456_789,
        "load_duration": 1_000_999,
        "prompt_eval_count": b.prompt_tokens,
        "prompt_eval_duration": 250 * MS + 999,
        "eval_count": len(b.reply),
        "eval_duration": 4 * 1000 * MS,
    }
    if b.cached_prompt:
        del counters["prompt_eval_count"]
    return counters


class _OllamaHandler(_Handler):
    def version(self, body: Any, mode: str) -> None:
        if not self._maybe_fail(mode):
            self.send_json(200, {"version": "0.6.2"})

    def tags(self, body: Any, mode: str) -> None:
        models = [{"name": n, "model": n, "modified_at": "2025-05-01T10:00:00Z",
                   "size": 4_700_000_000, "digest": "365c0bd3c000",
                   "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B",
                               "quantization_level": "Q4_0"}}
                  for n in self.server.behaviour.models]  # fmt: skip
        if not self._maybe_fail(mode):
            self.send_json(200, {"models": models})

    def ps(self, body: Any, mode: str) -> None:
        loaded = [{"name": n, "model": n, "size": 5_000_000_000, "digest": "365c0bd3c000",
                   "expires_at": "2025-05-01T10:05:00Z", "size_vram": 5_000_000_000}
                  for n in self.server.behaviour.models[:1]]  # fmt: skip
        if not self._maybe_fail(mode):
            self.send_json(200, {"models": loaded})

    def chat(self, body: dict[str, Any], mode: str) -> None:
        self._generate(body, mode, lambda piece: {"message": {"role": "assistant",
                                                              "content": piece}})  # fmt: skip

    def generate(self, body: dict[str, Any], mode: str) -> None:
        self._generate(body, mode, lambda piece: {"response": piece})

    def _maybe_fail(self, mode: str) -> bool:
        if mode == "404":
            self.send_json(404, {"error": "404 page not found"})
        elif mode == "500":
            self.send_json(500, {"error": "llama runner process has terminated: exit status 2"})
        else:
            return False
        return True

    def _generate(self, body: dict[str, Any], mode: str, shape: Any) -> None:
        b = self.server.behaviour
        model = body.get("model")
        if mode == "404" or model not in b.models:
            self.send_json(404, {"error": f"model '{model}' not found"})
            return
        if self._maybe_fail(mode):
            return
        head = {"model": model, "created_at": "2025-05-01T10:00:00.000Z"}
        final = {**head, **shape(""), "done": True, **_ollama_counters(b)}
        if body.get("stream", True) is False:
            self.send_json(200, {**final, **shape("".join(b.reply))})
            return
        self.start_stream("application/x-ndjson")
        for i, piece in enumerate(b.reply):
            self.chunk(json.dumps({**head, **shape(piece), "done": False}).encode() + b"\n")
            if i == 0 and mode == "drop":
                self.drop()
                return
            if i == 0 and mode == "error-line":
                self.chunk(b'{"error":"an error was encountered while running the model"}\n')
                self.end_stream()
                return
        self.chunk(json.dumps(final).encode() + b"\n")
        self.end_stream()

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/api/version"): version,
        ("GET", "/api/tags"): tags,
        ("GET", "/api/ps"): ps,
        ("POST", "/api/chat"): chat,
        ("POST", "/api/generate"): generate,
    }


class OllamaServer(FakeServer):
    handler = _OllamaHandler


# -- llama-server ----------------------------------------------------------------------


def _timings(b: Behaviour) -> dict[str, Any]:
    n = len(b.reply)
    return {"prompt_n": b.prompt_tokens, "prompt_ms": 12.5, "prompt_per_token_ms": 1.04,
            "prompt_per_second": 960.0, "predicted_n": n, "predicted_ms": 30.25,
            "predicted_per_token_ms": 30.25 / n, "predicted_per_second": n / 0.03025}  # fmt: skip


class _LlamaHandler(_Handler):
    MODEL = "Meta-Llama-3-8B-Instruct-Q4_K_M.gguf"

    def health(self, body: Any, mode: str) -> None:
        if mode == "loading":
            self.send_json(503, {"error": {"code": 503, "message": "Loading model",
                                           "type": "unavailable_error"}})  # fmt: skip
        elif not self._maybe_fail(mode):
            self.send_json(200, {"status": "ok"})

    def models(self, body: Any, mode: str) -> None:
        if not self._maybe_fail(mode):
            self.send_json(200, {"object": "list", "data": [
                {"id": self.MODEL, "object": "model", "created": 1746000000,
                 "owned_by": "llamacpp"}]})  # fmt: skip

    def _maybe_fail(self, mode: str) -> bool:
        if mode == "404":
            self.send_json(404, {"error": {"code": 404, "message": "File Not Found",
                                           "type": "not_found_error"}})  # fmt: skip
        elif mode == "500":
            self.send_json(500, {"error": {"code": 500, "message": "failed to decode the batch",
                                           "type": "server_error"}})  # fmt: skip
        else:
            return False
        return True

    def completion(self, body: dict[str, Any], mode: str) -> None:
        b = self.server.behaviour
        if self._maybe_fail(mode):
            return
        final = {"content": "", "stop": True, "model": self.MODEL, "id_slot": 0,
                 "tokens_predicted": len(b.reply), "tokens_evaluated": b.prompt_tokens,
                 "tokens_cached": 0, "stop_type": "eos", "stopping_word": "",
                 "truncated": False, "timings": _timings(b)}  # fmt: skip
        if not body.get("stream", False):
            self.send_json(200, {**final, "content": "".join(b.reply)})
            return
        self._sse(b, mode, [{"content": p, "stop": False, "id_slot": 0} for p in b.reply],
                  [final], done=False)  # fmt: skip

    def chat(self, body: dict[str, Any], mode: str) -> None:
        b = self.server.behaviour
        if self._maybe_fail(mode):
            return
        n = len(b.reply)
        usage = {"prompt_tokens": b.prompt_tokens, "completion_tokens": n,
                 "total_tokens": b.prompt_tokens + n}  # fmt: skip
        head = {"id": "chatcmpl-1", "created": 1746000000, "model": self.MODEL,
                "system_fingerprint": "b5000"}  # fmt: skip
        if not body.get("stream", False):
            self.send_json(200, {**head, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(b.reply)},
                 "finish_reason": "stop"}], "usage": usage, "timings": _timings(b)})  # fmt: skip
            return
        chunk = {**head, "object": "chat.completion.chunk"}
        pieces = [{**chunk, "choices": [{"index": 0, "delta": {"content": p},
                                         "finish_reason": None}]} for p in b.reply]  # fmt: skip
        tail = [{**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        if body.get("stream_options", {}).get("include_usage"):
            tail.append({**chunk, "choices": [], "usage": usage, "timings": _timings(b)})
        self._sse(b, mode, pieces, tail, done=True)

    def _sse(
        self, b: Behaviour, mode: str, pieces: list[Any], tail: list[Any], *, done: bool
    ) -> None:
        self.start_stream("text/event-stream")
        for i, obj in enumerate(pieces):
            self.chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")
            if i == 0 and mode == "drop":
                self.drop()
                return
            if i == 0 and mode == "error-line":
                error = {"code": 500, "message": "slot unavailable", "type": "server_error"}
                self.chunk(b"error: " + json.dumps(error).encode() + b"\n\n")
                self.end_stream()
                return
        for obj in tail:
            self.chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")
        if done:
            self.chunk(b"data: [DONE]\n\n")
        self.end_stream()

    routes: ClassVar[dict[tuple[str, str], Any]] = {
        ("GET", "/health"): health,
        ("GET", "/v1/models"): models,
        ("POST", "/completion"): completion,
        ("POST", "/v1/chat/completions"): chat,
    }


class LlamaServer(FakeServer):
    handler = _LlamaHandler


# -- a server that never answers ---------------------------------------------------------


class SilentServer:
    """Listens on 127.0.0.1 (connections complete in the kernel) and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


# -- stand-in binaries -------------------------------------------------------------------------

_FAKE_LLAMA_SERVER = """#!{python}
import sys
sys.path.insert(0, {tests!r})
from llm_servers import LlamaServer
port = int(sys.argv[sys.argv.index("--port") + 1])
LlamaServer(port=port).serve_until_terminated()
"""


def make_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_llama_server(path: Path) -> Path:
    """An executable ``llama-server`` that serves ``LlamaServer`` on its ``--port``."""
    script = _FAKE_LLAMA_SERVER.format(python=sys.executable, tests=str(Path(__file__).parent))
    return make_executable(path, script)
