"""HTTP plumbing the Ollama and llama-server clients share: JSON calls, streamed lines,
and the translation of every transport failure into one :class:`LlmError` line.

Each :class:`HttpBackend` owns one ``httpx.Client`` with a connect and a read timeout.
An HTTP error answer becomes :class:`BackendResponseError` carrying the status and the
server's own message (Ollama's ``{"error": "..."}``, llama-server's
``{"error": {"message": "..."}}``), or :class:`ModelNotServedError` for a 404 on a call
that names a model. Server text in a message is cut to one short line.

:meth:`HttpBackend.health` is the one health check of every HTTP backend: one quick
probe (:meth:`HttpBackend.probe`, each protocol's own) says how it is ready, and any
:class:`LlmError` on the way says why it is not (:meth:`HttpBackend.unready`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

import httpx

from kei.adapters.llm.protocol import BackendKind, Health, Message, OnChunk, Timeouts, one_line
from kei.errors import (
    BackendResponseError,
    BackendTimeoutError,
    BackendUnreachableError,
    LlmError,
    ModelNotServedError,
)

__all__ = ["HttpBackend", "chat_body", "one_line"]

log = logging.getLogger(__name__)


class HttpBackend:
    """One backend's HTTP client; subclasses add the protocol's endpoints and say who
    they are (``kind``, ``name``, ``default_url``, and ``model_hint``: the hint of a
    404 for a model, ``{model}`` replaced)."""

    kind: BackendKind
    name: str
    default_url: str
    model_hint: str = ""

    def __init__(self, base_url: str | None = None, timeouts: Timeouts = Timeouts()) -> None:
        self.base_url = (base_url or self.default_url).rstrip("/")
        self.timeouts = timeouts
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeouts.read_s, connect=timeouts.connect_s),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- health ------------------------------------------------------------------------

    def health(self) -> Health:
        """Up enough to take a request? Never raises: a failure is the reason."""
        try:
            ready = self.probe()
        except LlmError as exc:
            return Health(self.kind, False, self.unready(exc))
        return Health(self.kind, True, ready)

    def probe(self) -> str:
        """Ask the server one quick question; how it is ready, or an LlmError."""
        raise NotImplementedError

    def unready(self, exc: LlmError) -> str:
        """Why the probe says the server is not ready."""
        return str(exc)

    # -- calls ---------------------------------------------------------------------

    def get_json(self, path: str, *, timeout_s: float | None = None) -> Any:
        """GET ``path`` and decode its JSON answer (a shorter timeout for probes)."""
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else None
        with self.errors(path, timeout_s):
            response = self._client.get(path, timeout=timeout or httpx.USE_CLIENT_DEFAULT)
            self._check(response, path)
            return self._decode(response.text, path)

    def post_json(self, path: str, body: dict[str, Any], *, model: str | None = None) -> Any:
        with self.errors(path):
            response = self._client.post(path, json=body)
            self._check(response, path, model)
            return self._decode(response.text, path)

    def stream_lines(
        self, path: str, body: dict[str, Any], *, model: str | None = None
    ) -> Iterator[str]:
        """POST ``path`` and yield the answer's non-empty lines as they arrive."""
        with self.errors(path), self._client.stream("POST", path, json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response, path, model)
            for line in response.iter_lines():
                if line.strip():
                    yield line

    def decode_line(self, line: str, path: str) -> dict[str, Any]:
        """One streamed JSON object (an NDJSON line or an SSE ``data:`` payload)."""
        value = self._decode(line, path)
        if not isinstance(value, dict):
            raise BackendResponseError(f"{self.name} at {self.url(path)} sent a non-object line")
        return value

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- answers -----------------------------------------------------------------------

    def post_object(self, path: str, body: dict[str, Any], *, model: str) -> dict[str, Any]:
        """POST ``path`` and the JSON object it answers (anything else is an error)."""
        value = self.post_json(path, body, model=model)
        if not isinstance(value, dict):
            raise BackendResponseError(f"{self.name} at {self.url(path)}: answer is not an object")
        return value

    def names_in(self, path: str, items: str, name: str) -> list[str]:
        """The ``name`` of each object in the list ``items`` of ``path``'s answer."""
        data = self.get_json(path)
        listed = data.get(items) if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise BackendResponseError(f"{self.name} at {self.url(path)}: no {items!r} list")
        return [str(m[name]) for m in listed if isinstance(m, dict) and name in m]

    def failed(self, path: str, error: object) -> BackendResponseError:
        """The error for an answer in which the server says it failed."""
        return BackendResponseError(
            f"{self.name} at {self.url(path)} failed: {one_line(str(error))}"
        )

    def cut_short(self, path: str, final: str) -> BackendResponseError:
        """The error for a stream that ended before ``final`` (its last event or line)."""
        return BackendResponseError(
            f"{self.name} at {self.url(path)}: the stream ended before {final}",
            hint="the server may have crashed or restarted; try again",
        )

    # -- errors ----------------------------------------------------------------------

    @contextmanager
    def errors(self, path: str, timeout_s: float | None = None) -> Iterator[None]:
        """Turn every httpx failure into one LlmError line naming the backend and URL."""
        where = f"{self.name} at {self.url(path)}"
        connect_s = self.timeouts.connect_s if timeout_s is None else timeout_s
        read_s = self.timeouts.read_s if timeout_s is None else timeout_s
        try:
            yield
        except httpx.ConnectTimeout:
            raise BackendTimeoutError(
                f"{where}: no connection within {connect_s:g} s",
                hint=f"is {self.name} running and reachable?",
            ) from None
        except httpx.TimeoutException:
            raise BackendTimeoutError(
                f"{where}: no answer within {read_s:g} s",
                hint=f"{self.name} may be loading a model or stuck; try again or raise the timeout",
            ) from None
        except httpx.ConnectError as exc:
            raise BackendUnreachableError(
                f"{where}: nothing answers ({one_line(str(exc), 80) or 'connection refused'})",
                hint=f"start {self.name}, or point kei at it (see `kei llm backends`)",
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            log.debug("%s: transport failure: %r", where, exc)
            raise BackendResponseError(
                f"{where}: connection dropped before the answer was complete",
                hint="the server may have crashed or restarted; try again",
            ) from None
        except httpx.HTTPError as exc:
            raise BackendResponseError(f"{where}: {one_line(str(exc), 120)}") from None

    def _check(self, response: httpx.Response, path: str, model: str | None = None) -> None:
        status = response.status_code
        if status < 400:
            return
        message = _server_message(response.text) or response.reason_phrase or "error"
        where = f"{self.name} at {self.url(path)}"
        if status == 404 and model is not None:
            raise ModelNotServedError(
                f"{where} has no model {model!r} ({one_line(message, 120)})",
                hint=self.model_hint.format(model=model) or "see `kei llm backends`",
            )
        raise BackendResponseError(f"{where} answered HTTP {status}: {one_line(message)}",
                                   status=status)  # fmt: skip

    def _decode(self, text: str, path: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise BackendResponseError(
                f"{self.name} at {self.url(path)} sent something that is not JSON: "
                f"{one_line(text, 60)!r}"
            ) from None


def chat_body(model: str, messages: Sequence[Message], on_chunk: OnChunk | None) -> dict[str, Any]:
    """The chat request Ollama and llama-server both take (OpenAI's ``messages``),
    streamed when there is an ``on_chunk`` to stream to."""
    return {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": on_chunk is not None,
    }


def _server_message(text: str) -> str:
    """The message in Ollama's ``{"error": "..."}`` or OpenAI-style ``{"error": {...}}``."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str):
            return err
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return text.strip()
