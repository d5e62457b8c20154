"""A running ``llama-server`` over HTTP (upstream kei-llm-llamacpp): ``/health`` (200 when
ready, 503 while loading), ``/v1/models``, ``/completion`` (SSE ``data: {...}`` lines
when streaming; the final one has ``stop: true``, ``timings`` and the token counts) and
``/v1/chat/completions`` (OpenAI's shape: ``choices[0].delta`` when streaming, ``usage``
at the end, and ``data: [DONE]``). Timings are float milliseconds and become whole µs.

Finding llama.cpp on disk and starting a server is ``llamacpp.py``'s job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from msgspec.structs import replace

from kei.adapters.llm.protocol import (
    Chunk,
    Completion,
    Message,
    OnChunk,
    finish_reason_of,
)
from kei.adapters.llm.transport import HttpBackend, chat_body
from kei.domain.catalog.usage import from_openai
from kei.domain.events.payload import TokenUsage
from kei.errors import BackendResponseError, LlmError

__all__ = ["DEFAULT_URL", "LlamaServerBackend"]

DEFAULT_URL: Final = "http://127.0.0.1:8080"
_SSE_DATA: Final = "data:"
_DONE: Final = "[DONE]"
_US_PER_MS: Final = 1000
_FINAL: Final = "its final event"


class LlamaServerBackend(HttpBackend):
    """A running ``llama-server`` at ``base_url`` (one model loaded, whatever is asked)."""

    kind = "llamacpp"
    name = "llama-server"
    default_url = DEFAULT_URL
    model_hint = "start llama-server with that model (-m FILE.gguf)"

    def probe(self) -> str:
        """``/health``: 200 when ready, 503 while loading."""
        self.get_json("/health", timeout_s=min(self.timeouts.read_s, 1.0))
        return f"llama-server ready at {self.base_url}"

    def unready(self, exc: LlmError) -> str:
        if isinstance(exc, BackendResponseError):
            state = "loading a model" if exc.status == 503 else str(exc)
            return f"llama-server at {self.base_url}: {state}"
        return str(exc)

    def list_models(self) -> list[str]:
        """The loaded model's id(s) from ``/v1/models``."""
        return self.names_in("/v1/models", "data", "id")

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, on_chunk: OnChunk | None = None
    ) -> Completion:
        """``/completion`` with the raw prompt (a system text is put before it)."""
        text = prompt if system is None else f"{system}\n\n{prompt}"
        body: dict[str, Any] = {"prompt": text, "stream": on_chunk is not None}
        path = "/completion"
        if on_chunk is None:
            return _from_completion(self.post_object(path, body, model=model))
        pieces: list[str] = []
        for obj in self._events(path, body, model):
            piece = obj.get("content")
            if isinstance(piece, str) and piece:
                pieces.append(piece)
                on_chunk(Chunk(piece))
            if obj.get("stop") is True:
                return _from_completion({**obj, "content": "".join(pieces)})
        raise self.cut_short(path, _FINAL)

    def chat(
        self, model: str, messages: Sequence[Message], *, on_chunk: OnChunk | None = None
    ) -> Completion:
        """``/v1/chat/completions``, OpenAI's shape."""
        body = chat_body(model, messages, on_chunk)
        path = "/v1/chat/completions"
        if on_chunk is None:
            obj = self.post_object(path, body, model=model)
            choice = _first_choice(obj)
            message = choice.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            return _from_openai(obj, content if isinstance(content, str) else "",
                                choice.get("finish_reason"))  # fmt: skip
        body["stream_options"] = {"include_usage": True}
        pieces: list[str] = []
        finish: object = None
        last: dict[str, Any] = {}
        for obj in self._events(path, body, model, until_done=True):
            choice = _first_choice(obj)
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(piece, str) and piece:
                pieces.append(piece)
                on_chunk(Chunk(piece))
            finish = choice.get("finish_reason") or finish
            last = {**last, **{k: obj[k] for k in ("usage", "timings") if obj.get(k)}}
        if finish is None and not last:
            raise self.cut_short(path, _FINAL)
        return _from_openai(last, "".join(pieces), finish)

    def _events(
        self, path: str, body: dict[str, Any], model: str, *, until_done: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The JSON objects of an SSE stream; ``until_done`` wants a ``data: [DONE]``."""
        for line in self.stream_lines(path, body, model=model):
            if line.startswith("error:"):
                raise self.failed(path, line[6:])
            if not line.startswith(_SSE_DATA):
                continue  # SSE comments, event names, keep-alives
            data = line[len(_SSE_DATA) :].strip()
            if data == _DONE:
                return
            obj = self.decode_line(data, path)
            if "error" in obj:
                raise self.failed(path, obj["error"])
            yield obj
        if until_done:
            raise self.cut_short(path, _FINAL)


def _first_choice(obj: dict[str, Any]) -> dict[str, Any]:
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def _from_completion(obj: dict[str, Any]) -> Completion:
    """``/completion``'s final object: counts as ``tokens_evaluated``/``tokens_predicted``."""
    counts = (obj.get("tokens_evaluated"), obj.get("tokens_predicted"))
    return _completion(str(obj.get("content") or ""), counts, obj, obj.get("stop_type"))


def _from_openai(obj: dict[str, Any], text: str, finish: object) -> Completion:
    """OpenAI's shape: counts in ``usage``, with the cached and reasoning parts read by
    ``kei.domain.catalog.usage.from_openai`` (OpenAI's counts already include them)."""
    usage = _table(obj, "usage")
    counts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    done = _completion(text, counts, obj, finish)
    parts = from_openai(usage)
    return replace(done, usage=replace(done.usage, cache_read_tokens=parts.cache_read_tokens,
                                       reasoning_tokens=parts.reasoning_tokens))  # fmt: skip


def _completion(text: str, counts: tuple[object, object], obj: dict[str, Any],
                finish: object) -> Completion:  # fmt: skip
    """A completion from the token counts of either shape, else llama.cpp's
    ``timings`` (whose durations are float milliseconds)."""
    timings = _table(obj, "timings")
    prompt_us, gen_us = _ms_to_us(timings.get("prompt_ms")), _ms_to_us(timings.get("predicted_ms"))
    return Completion(
        text=text,
        usage=TokenUsage(
            input_tokens=_count(counts[0], timings.get("prompt_n")),
            output_tokens=_count(counts[1], timings.get("predicted_n")),
        ),
        total_us=_total(prompt_us, gen_us),
        prompt_us=prompt_us,
        generation_us=gen_us,
        finish_reason=finish_reason_of(finish),
    )


def _table(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _count(*values: object) -> int | None:
    """The first value that is a count (an int >= 0)."""
    return next((v for v in values if type(v) is int and v >= 0), None)


def _ms_to_us(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value < float("inf"):
        return None
    return round(value * _US_PER_MS)


def _total(*parts: int | None) -> int | None:
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
