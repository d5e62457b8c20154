"""Ollama over its HTTP API (upstream kei-llm-ollama).

Endpoints: ``/api/chat`` and ``/api/generate`` (NDJSON when streaming: one JSON object a
line, the last with ``"done": true`` and the counters), ``/api/tags`` (installed
models), ``/api/ps`` (loaded models), ``/api/version``. Rules:

- ``stream`` is always sent: Ollama streams unless told otherwise.
- Usage comes from the final object: ``prompt_eval_count`` -> input tokens,
  ``eval_count`` -> output tokens. Durations are nanoseconds (``total_duration``,
  ``load_duration``, ``prompt_eval_duration``, ``eval_duration``) and become whole µs.
  Ollama leaves ``prompt_eval_count`` out when the prompt came from its cache: the input
  count is then unknown (None), not zero.
- A line ``{"error": "..."}`` in the stream, a stream that ends without ``done``, and a
  connection cut mid-stream are each one :class:`BackendResponseError`.

Example::

    with OllamaBackend("http://127.0.0.1:11434") as ollama:
        done = ollama.chat("llama3:8b", [Message("user", "hi")], on_chunk=print)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from kei.adapters.llm.protocol import (
    Chunk,
    Completion,
    Message,
    OnChunk,
    finish_reason_of,
)
from kei.adapters.llm.transport import HttpBackend, chat_body
from kei.domain.events.payload import TokenUsage
from kei.errors import BackendResponseError

__all__ = ["DEFAULT_URL", "HEALTH_TIMEOUT_S", "OllamaBackend", "completion_from_counters"]

DEFAULT_URL: Final = "http://127.0.0.1:11434"
HEALTH_TIMEOUT_S: Final = 1.0
_NS_PER_US: Final = 1000


class OllamaBackend(HttpBackend):
    """An Ollama server at ``base_url`` (default :data:`DEFAULT_URL`)."""

    kind = "ollama"
    name = "ollama"
    default_url = DEFAULT_URL
    model_hint = "pull it with `ollama pull {model}`, or see `kei llm backends`"

    def version(self, *, timeout_s: float | None = None) -> str:
        data = self.get_json("/api/version", timeout_s=timeout_s)
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise BackendResponseError(f"ollama at {self.url('/api/version')}: no version field")
        return str(data["version"])

    def probe(self) -> str:
        """``/api/version`` within :data:`HEALTH_TIMEOUT_S`."""
        return f"ollama {self.version(timeout_s=HEALTH_TIMEOUT_S)} at {self.base_url}"

    def list_models(self) -> list[str]:
        """Installed model tags (``/api/tags``), in Ollama's order."""
        return self.names_in("/api/tags", "models", "name")

    def running_models(self) -> list[str]:
        """Models loaded in memory now (``/api/ps``)."""
        return self.names_in("/api/ps", "models", "name")

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, on_chunk: OnChunk | None = None
    ) -> Completion:
        body: dict[str, Any] = {"model": model, "prompt": prompt, "stream": on_chunk is not None}
        if system is not None:
            body["system"] = system
        return self._call("/api/generate", body, on_chunk, _generated_text)

    def chat(
        self, model: str, messages: Sequence[Message], *, on_chunk: OnChunk | None = None
    ) -> Completion:
        return self._call(
            "/api/chat", chat_body(model, messages, on_chunk), on_chunk, _message_text
        )

    def _call(
        self, path: str, body: dict[str, Any], on_chunk: OnChunk | None, text_of: Any
    ) -> Completion:
        model = str(body["model"])
        if on_chunk is None:
            final = self.post_object(path, body, model=model)
            self._raise_error_line(final, path)
            return completion_from_counters(text_of(final), final)
        pieces: list[str] = []
        for obj in self._objects(path, body, model):
            piece = text_of(obj)
            if piece:
                pieces.append(piece)
                on_chunk(Chunk(piece))
            if obj.get("done") is True:
                return completion_from_counters("".join(pieces), obj)
        raise self.cut_short(path, "its final ('done') line")

    def _objects(self, path: str, body: dict[str, Any], model: str) -> Iterator[dict[str, Any]]:
        for line in self.stream_lines(path, body, model=model):
            obj = self.decode_line(line, path)
            self._raise_error_line(obj, path)
            yield obj

    def _raise_error_line(self, obj: dict[str, Any], path: str) -> None:
        if "error" in obj:
            raise self.failed(path, obj["error"])


def completion_from_counters(text: str, final: dict[str, Any]) -> Completion:
    """A completion from Ollama's final object (counters absent stay None)."""
    return Completion(
        text=text,
        usage=TokenUsage(
            input_tokens=_count(final.get("prompt_eval_count")),
            output_tokens=_count(final.get("eval_count")),
        ),
        total_us=_ns_to_us(final.get("total_duration")),
        load_us=_ns_to_us(final.get("load_duration")),
        prompt_us=_ns_to_us(final.get("prompt_eval_duration")),
        generation_us=_ns_to_us(final.get("eval_duration")),
        finish_reason=finish_reason_of(final.get("done_reason")),
    )


def _message_text(obj: dict[str, Any]) -> str:
    message = obj.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _generated_text(obj: dict[str, Any]) -> str:
    text = obj.get("response")
    return text if isinstance(text, str) else ""


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _ns_to_us(value: object) -> int | None:
    ns = _count(value)
    return None if ns is None else ns // _NS_PER_US
