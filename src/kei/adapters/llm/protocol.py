"""The one typed protocol every local LLM backend speaks, its values and its errors.

kei talks to Ollama, llama.cpp's ``llama-server`` and MLX through :class:`LlmBackend`:
list models, check health, generate from a prompt, chat over messages. Passing an
``on_chunk`` callback streams: each piece of text reaches the callback as the backend
produces it, and the call still returns the whole :class:`Completion`. Rules:

- Counts and durations a backend did not report stay None (unknown, never zero);
  durations are integer microseconds, whatever unit the backend used.
- ``finish_reason`` is ``stop`` or ``length`` when the backend says why it stopped in
  one of the usual ways, else the backend's own word.
- Every network call has a connect and a read timeout (:class:`Timeouts`); a refused
  connection, a timeout, an HTTP error, a connection dropped mid-stream and malformed
  JSON each become one :class:`LlmError` line naming the backend and what to do.
  No ``httpx`` or ``OSError`` escapes a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Literal, Protocol

from msgspec import Struct, field

from kei.domain.events.payload import TokenUsage

__all__ = [
    "BACKEND_KINDS",
    "BackendKind",
    "Chunk",
    "Completion",
    "Health",
    "LlmBackend",
    "Message",
    "OnChunk",
    "Timeouts",
    "finish_reason_of",
    "one_line",
]

BackendKind = Literal["mlx", "llamacpp", "ollama"]
BACKEND_KINDS: Final[tuple[BackendKind, ...]] = ("mlx", "llamacpp", "ollama")


class Timeouts(Struct, frozen=True):
    """Seconds to wait for a connection and between two reads of an answer (so a
    streamed answer may take longer overall, as long as it keeps coming)."""

    connect_s: float = 2.0
    read_s: float = 120.0


class Message(Struct, frozen=True):
    role: str
    content: str


class Chunk(Struct, frozen=True):
    """A piece of generated text, as the backend streamed it."""

    text: str


OnChunk = Callable[[Chunk], None]


class Completion(Struct, frozen=True):
    """A finished call: the whole text, token counts, durations in µs, why it stopped."""

    text: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    total_us: int | None = None
    load_us: int | None = None
    prompt_us: int | None = None
    generation_us: int | None = None
    finish_reason: str | None = None


class Health(Struct, frozen=True):
    backend_kind: str
    available: bool
    reason: str


class LlmBackend(Protocol):
    """What kei asks of every local backend."""

    @property
    def kind(self) -> BackendKind: ...

    def health(self) -> Health: ...

    def list_models(self) -> list[str]: ...

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, on_chunk: OnChunk | None = None
    ) -> Completion: ...

    def chat(
        self, model: str, messages: Sequence[Message], *, on_chunk: OnChunk | None = None
    ) -> Completion: ...


_REASONS: Final = {"stop": "stop", "eos": "stop", "word": "stop", "length": "length",
                   "limit": "length"}  # fmt: skip


def finish_reason_of(raw: object) -> str | None:
    """``stop``/``length`` for the usual words of Ollama, llama.cpp and OpenAI."""
    if not isinstance(raw, str) or not raw:
        return None
    return _REASONS.get(raw, raw)


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (server text in an error)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
