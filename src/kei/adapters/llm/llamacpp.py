"""llama.cpp: find its binaries and GGUF files, talk to a running ``llama-server``, and
start one on request (upstream kei-llm-llamacpp).

- Binaries: ``llama-server`` and ``llama-cli`` in ``$KEI_LLAMA_CPP_DIR`` (which wins,
  as upstream) or on ``PATH``.
- GGUF files: ``*.gguf`` under the folders of ``$KEI_GGUF_DIRS`` (``os.pathsep``
  separated), else llama.cpp's download caches and ``~/models``; at most
  ``LIMITS.max_gguf_depth`` folders deep. A model's name is its file name without ``.gguf``.
- ``llama-server`` over HTTP: ``/health`` (200 when ready, 503 while loading),
  ``/v1/models``, ``/completion`` (SSE ``data: {...}`` lines when streaming; the final
  one has ``stop: true``, ``timings`` and the token counts) and ``/v1/chat/completions``
  (OpenAI's shape: ``choices[0].delta`` when streaming, ``usage`` at the end, and
  ``data: [DONE]``). Timings are float milliseconds and become whole µs.
- :func:`start_server` launches ``llama-server -m FILE --host H --port P`` and waits
  for ``/health`` to say ready; a server that exits or stays unready past the deadline
  is stopped and reported in one line.
- :class:`LlamaCppBackend` is what the router uses: the running server's model when a
  server answers, else the GGUF files on disk (upstream's discovery). A call goes to the
  running server; with ``start`` and no server running, it starts ``llama-server`` on
  the GGUF file named by the model, at the configured address, for that one call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from kei.adapters.llm.protocol import (
    BackendKind,
    Chunk,
    Completion,
    Health,
    Message,
    OnChunk,
    Timeouts,
    finish_reason_of,
    one_line,
)
from kei.adapters.llm.transport import HttpBackend
from kei.domain.events.payload import TokenUsage
from kei.errors import BackendResponseError, LlmError, ModelNotServedError, PlatformError
from kei.limits import LIMITS

__all__ = [
    "DEFAULT_URL",
    "Binaries",
    "LlamaCppBackend",
    "LlamaServerBackend",
    "RunningServer",
    "default_gguf_dirs",
    "find_binaries",
    "find_gguf",
    "start_server",
]

DEFAULT_URL: Final = "http://127.0.0.1:8080"
_SSE_DATA: Final = "data:"
_DONE: Final = "[DONE]"
_US_PER_MS: Final = 1000


@dataclass(frozen=True, slots=True)
class Binaries:
    server: Path | None = None
    cli: Path | None = None

    @property
    def any_found(self) -> bool:
        return self.server is not None or self.cli is not None


def find_binaries(env: Mapping[str, str]) -> Binaries:
    """``llama-server`` and ``llama-cli``: ``$KEI_LLAMA_CPP_DIR`` first, then ``PATH``."""
    return Binaries(_find("llama-server", env), _find("llama-cli", env))


def _find(name: str, env: Mapping[str, str]) -> Path | None:
    folder = env.get("KEI_LLAMA_CPP_DIR")
    if folder:
        found = shutil.which(name, path=os.pathsep.join([folder, str(Path(folder) / "bin")]))
        if found:
            return Path(found)
    found = shutil.which(name, path=env.get("PATH", ""))
    return Path(found) if found else None


def default_gguf_dirs(env: Mapping[str, str]) -> list[Path]:
    """``$KEI_GGUF_DIRS``, else llama.cpp's download caches and ``~/models``."""
    listed = env.get("KEI_GGUF_DIRS")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    home = Path(env.get("HOME") or Path.home())
    cache = Path(env.get("LLAMA_CACHE") or env.get("XDG_CACHE_HOME") or home / ".cache")
    if not env.get("LLAMA_CACHE"):
        cache = cache / "llama.cpp"
    return [cache, home / "Library" / "Caches" / "llama.cpp", home / "models"]


def find_gguf(dirs: Sequence[Path]) -> dict[str, Path]:
    """Every ``*.gguf`` below ``dirs`` by model name (its stem), first found wins."""
    found: dict[str, Path] = {}
    for root in dirs:
        for path in _walk(root, LIMITS.max_gguf_depth):
            found.setdefault(path.name[: -len(".gguf")], path)
    return found


def _walk(folder: Path, depth: int) -> Iterator[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.suffix.lower() == ".gguf" and entry.is_file():
            yield entry
        elif depth > 1 and entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry, depth - 1)


class LlamaServerBackend(HttpBackend):
    """A running ``llama-server`` at ``base_url`` (one model loaded, whatever is asked)."""

    def __init__(self, base_url: str = DEFAULT_URL, timeouts: Timeouts = Timeouts()) -> None:
        hint = "start llama-server with that model (-m FILE.gguf)"
        super().__init__("llama-server", base_url, timeouts, model_hint=hint)

    @property
    def kind(self) -> BackendKind:
        return "llamacpp"

    def health(self) -> Health:
        try:
            self.get_json("/health", timeout_s=min(self.timeouts.read_s, 1.0))
        except BackendResponseError as exc:
            state = "loading a model" if exc.status == 503 else str(exc)
            return Health("llamacpp", False, f"llama-server at {self.base_url}: {state}")
        except LlmError as exc:
            return Health("llamacpp", False, str(exc))
        return Health("llamacpp", True, f"llama-server ready at {self.base_url}")

    def list_models(self) -> list[str]:
        """The loaded model's id(s) from ``/v1/models``."""
        data = self.get_json("/v1/models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise BackendResponseError(f"llama-server at {self.url('/v1/models')}: no 'data' list")
        return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, on_chunk: OnChunk | None = None
    ) -> Completion:
        """``/completion`` with the raw prompt (a system text is put before it)."""
        text = prompt if system is None else f"{system}\n\n{prompt}"
        body: dict[str, Any] = {"prompt": text, "stream": on_chunk is not None}
        path = "/completion"
        if on_chunk is None:
            return _from_completion(self._object(self.post_json(path, body, model=model), path))
        pieces: list[str] = []
        for obj in self._events(path, body, model):
            piece = obj.get("content")
            if isinstance(piece, str) and piece:
                pieces.append(piece)
                on_chunk(Chunk(piece))
            if obj.get("stop") is True:
                return _from_completion({**obj, "content": "".join(pieces)})
        raise self._cut_short(path)

    def chat(
        self, model: str, messages: Sequence[Message], *, on_chunk: OnChunk | None = None
    ) -> Completion:
        """``/v1/chat/completions``, OpenAI's shape."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": on_chunk is not None,
        }
        path = "/v1/chat/completions"
        if on_chunk is None:
            obj = self._object(self.post_json(path, body, model=model), path)
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
            raise self._cut_short(path)
        return _from_openai(last, "".join(pieces), finish)

    def _events(
        self, path: str, body: dict[str, Any], model: str, *, until_done: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The JSON objects of an SSE stream; ``until_done`` wants a ``data: [DONE]``."""
        for line in self.stream_lines(path, body, model=model):
            if line.startswith("error:"):
                raise BackendResponseError(
                    f"llama-server at {self.url(path)} failed: {one_line(line[6:])}"
                )
            if not line.startswith(_SSE_DATA):
                continue  # SSE comments, event names, keep-alives
            data = line[len(_SSE_DATA) :].strip()
            if data == _DONE:
                return
            obj = self.decode_line(data, path)
            if "error" in obj:
                raise BackendResponseError(
                    f"llama-server at {self.url(path)} failed: {one_line(str(obj['error']))}"
                )
            yield obj
        if until_done:
            raise self._cut_short(path)

    def _object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BackendResponseError(f"llama-server at {self.url(path)}: answer is not an object")
        return value

    def _cut_short(self, path: str) -> BackendResponseError:
        return BackendResponseError(
            f"llama-server at {self.url(path)}: the stream ended before its final event",
            hint="the server may have crashed or restarted; try again",
        )


def _first_choice(obj: dict[str, Any]) -> dict[str, Any]:
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def _from_completion(obj: dict[str, Any]) -> Completion:
    timings = _table(obj, "timings")
    prompt_us, gen_us = _ms_to_us(timings.get("prompt_ms")), _ms_to_us(timings.get("predicted_ms"))
    return Completion(
        text=str(obj.get("content") or ""),
        usage=TokenUsage(
            input_tokens=_count(obj.get("tokens_evaluated"), timings.get("prompt_n")),
            output_tokens=_count(obj.get("tokens_predicted"), timings.get("predicted_n")),
        ),
        total_us=_total(prompt_us, gen_us),
        prompt_us=prompt_us,
        generation_us=gen_us,
        finish_reason=finish_reason_of(obj.get("stop_type")),
    )


def _from_openai(obj: dict[str, Any], text: str, finish: object) -> Completion:
    usage, timings = _table(obj, "usage"), _table(obj, "timings")
    prompt_us, gen_us = _ms_to_us(timings.get("prompt_ms")), _ms_to_us(timings.get("predicted_ms"))
    return Completion(
        text=text,
        usage=TokenUsage(
            input_tokens=_count(usage.get("prompt_tokens"), timings.get("prompt_n")),
            output_tokens=_count(usage.get("completion_tokens"), timings.get("predicted_n")),
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


# -- starting a server -----------------------------------------------------------------


@dataclass(slots=True)
class RunningServer:
    """A ``llama-server`` kei started: its client and its process, stopped together."""

    backend: LlamaServerBackend
    process: subprocess.Popen[bytes]

    def stop(self, grace_s: float = 5.0) -> None:
        self.backend.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    binary: Path,
    model: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    ready_within_s: float = 120.0,
    extra_args: Sequence[str] = (),
    timeouts: Timeouts = Timeouts(),
    sleep: Callable[[float], None] = time.sleep,
) -> RunningServer:
    """Launch ``llama-server`` on ``model`` and return once ``/health`` says ready."""
    if not model.is_file():
        raise ModelNotServedError(f"no GGUF file at {model}", hint="see `kei llm backends`")
    args = [str(binary), "-m", str(model), "--host", host, "--port", str(port), *extra_args]
    try:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
    except OSError as exc:
        raise PlatformError(f"cannot run {binary}: {exc.strerror or exc}") from None
    server = RunningServer(LlamaServerBackend(f"http://{host}:{port}", timeouts), process)
    deadline = time.monotonic() + ready_within_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            server.stop()
            raise PlatformError(f"llama-server exited with code {code} before it was ready",
                                hint=f"run `{' '.join(args)}` by hand to see why")  # fmt: skip
        if server.backend.health().available:
            return server
        sleep(0.2)
    server.stop()
    raise PlatformError(
        f"llama-server on {model.name} was not ready within {ready_within_s:g} s",
        hint="a large model can take longer to load; raise the deadline",
    )


# -- the backend the router uses -----------------------------------------------------------

T = TypeVar("T")


class LlamaCppBackend:
    """llama.cpp as one backend: a running server, else GGUF files and (``start``) a
    server started for the call."""

    def __init__(
        self,
        server: LlamaServerBackend,
        env: Mapping[str, str],
        *,
        start: bool = False,
        ready_within_s: float = 120.0,
    ) -> None:
        self.server = server
        self.env = dict(env)
        self.start = start
        self.ready_within_s = ready_within_s

    @property
    def kind(self) -> BackendKind:
        return "llamacpp"

    def close(self) -> None:
        self.server.close()

    def health(self) -> Health:
        return self.server.health()

    def list_models(self) -> list[str]:
        """The running server's model, else the GGUF files by name."""
        try:
            return self.server.list_models()
        except LlmError:
            return sorted(find_gguf(default_gguf_dirs(self.env)))

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, on_chunk: OnChunk | None = None
    ) -> Completion:
        return self._call(model, lambda s: s.generate(model, prompt, system=system,
                                                      on_chunk=on_chunk))  # fmt: skip

    def chat(
        self, model: str, messages: Sequence[Message], *, on_chunk: OnChunk | None = None
    ) -> Completion:
        return self._call(model, lambda s: s.chat(model, messages, on_chunk=on_chunk))

    def _call(self, model: str, call: Callable[[LlamaServerBackend], T]) -> T:
        if not self.start or self.server.health().available:
            return call(self.server)
        path = find_gguf(default_gguf_dirs(self.env)).get(model)
        if path is None:
            raise ModelNotServedError(f"no GGUF file named {model}.gguf to start llama-server on",
                                      hint="see `kei llm backends`; set KEI_GGUF_DIRS")  # fmt: skip
        binary = find_binaries(self.env).server
        if binary is None:
            raise PlatformError("llama-server is not on PATH or in KEI_LLAMA_CPP_DIR",
                                hint="install llama.cpp, or set KEI_LLAMA_CPP_DIR")  # fmt: skip
        where = urlsplit(self.server.base_url)
        with start_server(binary, path, host=where.hostname or "127.0.0.1",
                          port=where.port or 8080, ready_within_s=self.ready_within_s,
                          timeouts=self.server.timeouts) as running:  # fmt: skip
            return call(running.backend)
