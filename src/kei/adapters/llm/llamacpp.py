"""llama.cpp on this machine: find its binaries and GGUF files, start a ``llama-server``
on request, and the backend the router uses (upstream kei-llm-llamacpp). Talking to a
running server is ``llama_server.py``'s job.

- Binaries: ``llama-server`` and ``llama-cli`` in ``$KEI_LLAMA_CPP_DIR`` (which wins,
  as upstream) or on ``PATH``.
- GGUF files: ``*.gguf`` under the folders of ``$KEI_GGUF_DIRS`` (``os.pathsep``
  separated), else llama.cpp's download caches and ``~/models``; at most
  ``LIMITS.max_gguf_depth`` folders deep. A model's name is its file name without
  ``.gguf``.
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
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from msgspec import Struct

from kei.adapters.llm.llama_server import LlamaServerBackend
from kei.adapters.llm.protocol import BackendKind, Completion, Health, Message, OnChunk, Timeouts
from kei.errors import LlmError, ModelNotServedError, PlatformError
from kei.limits import LIMITS

__all__ = [
    "Binaries",
    "LlamaCppBackend",
    "RunningServer",
    "default_gguf_dirs",
    "find_binaries",
    "find_gguf",
    "start_server",
]


class Binaries(Struct, frozen=True):
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


# -- starting a server -----------------------------------------------------------------


class RunningServer(Struct):
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
