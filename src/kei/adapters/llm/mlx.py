"""MLX through ``mlx_lm`` in a subprocess, on Apple Silicon only (upstream kei-llm-mlx).

- Platform gate: macOS on arm64. Anywhere else every call is one
  :class:`PlatformError`: "MLX needs macOS on Apple Silicon (this is <os> <arch>)".
- Binaries: ``mlx_lm.generate`` and ``mlx_lm.server`` on ``PATH``.
- Models: the Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
  ``~/.cache/huggingface/hub``): a folder ``models--org--name`` is the id ``org/name``.
- A call runs ``mlx_lm.generate --model M --prompt P --max-tokens N``, whose output is
  the text between two ``==========`` lines, then ``Prompt: N tokens, R tokens-per-sec``
  and ``Generation: N tokens, R tokens-per-sec``. The text streams to ``on_chunk`` as it
  is printed; durations come from count / rate.
- Chat messages are sent as one prompt (``role: content`` lines), a system message
  through ``--system-prompt``: ``mlx_lm.generate`` takes a single prompt.
- No output for ``read_s`` seconds kills the process: a :class:`BackendTimeoutError`.
"""

from __future__ import annotations

import codecs
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final

from msgspec import Struct

from kei.adapters.llm.protocol import (
    BackendKind,
    Chunk,
    Completion,
    Health,
    Message,
    OnChunk,
    Timeouts,
    one_line,
)
from kei.domain.events.payload import TokenUsage
from kei.errors import BackendResponseError, BackendTimeoutError, PlatformError

__all__ = ["MAX_TOKENS", "MlxBackend", "MlxBinaries", "hf_cache_models", "parse_stats"]

MAX_TOKENS: Final = 1024
SEPARATOR: Final = "=========="
_STATS: Final = re.compile(r"^(Prompt|Generation):\s*(\d+)\s*tokens,\s*([0-9.]+)\s*tokens-per-sec",
                           re.MULTILINE)  # fmt: skip


class MlxBinaries(Struct, frozen=True):
    generate: Path | None = None
    server: Path | None = None


def hf_cache_models(env: Mapping[str, str]) -> list[str]:
    """``org/name`` ids of the models in the Hugging Face cache, sorted."""
    hub = env.get("HF_HUB_CACHE")
    if hub is None:
        home = env.get("HF_HOME") or str(
            Path(env.get("HOME") or Path.home()) / ".cache" / "huggingface"
        )
        hub = str(Path(home) / "hub")
    try:
        entries = sorted(p.name for p in Path(hub).expanduser().iterdir() if p.is_dir())
    except OSError:
        return []
    return [e[len("models--") :].replace("--", "/", 1) for e in entries if e.startswith("models--")]


def parse_stats(tail: str) -> tuple[TokenUsage, int | None, int | None]:
    """Token counts and µs of prompt and generation from ``mlx_lm.generate``'s summary."""
    found = {m[1]: (int(m[2]), float(m[3])) for m in _STATS.finditer(tail)}

    def us(key: str) -> int | None:
        n, rate = found.get(key, (0, 0.0))
        return round(n / rate * 1_000_000) if key in found and rate > 0 else None

    usage = TokenUsage(
        input_tokens=found["Prompt"][0] if "Prompt" in found else None,
        output_tokens=found["Generation"][0] if "Generation" in found else None,
    )
    return usage, us("Prompt"), us("Generation")


class MlxBackend:
    """``mlx_lm`` on this machine; ``system``/``machine`` default to the real platform."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        timeouts: Timeouts = Timeouts(),
        system: str | None = None,
        machine: str | None = None,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self.env = dict(env)
        self.timeouts = timeouts
        self.system = system if system is not None else sys.platform
        self.machine = machine if machine is not None else platform.machine()
        self.max_tokens = max_tokens

    @property
    def kind(self) -> BackendKind:
        return "mlx"

    @property
    def supported(self) -> bool:
        return self.system == "darwin" and self.machine.lower() in ("arm64", "aarch64")

    def binaries(self) -> MlxBinaries:
        path = self.env.get("PATH", "")
        gen, srv = (
            shutil.which("mlx_lm.generate", path=path),
            shutil.which("mlx_lm.server", path=path),
        )
        return MlxBinaries(Path(gen) if gen else None, Path(srv) if srv else None)

    def _gate(self) -> None:
        if not self.supported:
            raise PlatformError(
                f"MLX needs macOS on Apple Silicon (this is {self.system} {self.machine})",
                hint="use Ollama or llama.cpp on this machine (see `kei llm backends`)",
            )

    def health(self) -> Health:
        try:
            self._gate()
        except PlatformError as exc:
            return Health("mlx", False, str(exc))
        bins = self.binaries()
        if bins.generate is None and bins.server is None:
            return Health("mlx", False, "mlx_lm.generate / mlx_lm.server not on PATH")
        found = [f"{k}={p}" for k, p in (("generate", bins.generate), ("server", bins.server)) if p]
        return Health("mlx", True, ", ".join(found))

    def list_models(self) -> list[str]:
        self._gate()
        return hf_cache_models(self.env)

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, on_chunk: OnChunk | None = None
    ) -> Completion:
        self._gate()
        binary = self.binaries().generate
        if binary is None:
            raise PlatformError("mlx_lm.generate is not on PATH", hint="pip install mlx-lm")
        args = [str(binary), "--model", model, "--prompt", prompt,
                "--max-tokens", str(self.max_tokens)]  # fmt: skip
        if system is not None:
            args += ["--system-prompt", system]
        return self._run(args, on_chunk)

    def chat(
        self, model: str, messages: Sequence[Message], *, on_chunk: OnChunk | None = None
    ) -> Completion:
        system = "\n".join(m.content for m in messages if m.role == "system") or None
        turns = [m for m in messages if m.role != "system"]
        prompt = (
            turns[0].content
            if len(turns) == 1
            else "\n".join(f"{m.role}: {m.content}" for m in turns)
        )
        return self.generate(model, prompt, system=system, on_chunk=on_chunk)

    def _run(self, args: list[str], on_chunk: OnChunk | None) -> Completion:
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self.env)  # fmt: skip
        except OSError as exc:
            raise PlatformError(f"cannot run {args[0]}: {exc.strerror or exc}") from None
        assert proc.stdout is not None and proc.stderr is not None
        out = _Reader(proc.stdout)
        err = _Reader(proc.stderr)
        text = _TextFilter(on_chunk)
        try:
            while (piece := out.next(self.timeouts.read_s)) is not None:
                text.feed(piece)
            text.finish()
        except TimeoutError:
            proc.kill()
            proc.wait()
            raise BackendTimeoutError(
                f"mlx_lm.generate printed nothing for {self.timeouts.read_s:g} s; stopped it"
            ) from None
        code = proc.wait()
        if code != 0:
            lines = [line for line in err.rest().splitlines() if line.strip()]
            why = one_line(lines[-1]) if lines else "no message"  # a traceback's last line
            raise BackendResponseError(f"mlx_lm.generate exited with code {code}: {why}")
        usage, prompt_us, gen_us = parse_stats(text.tail)
        total = None if prompt_us is None or gen_us is None else prompt_us + gen_us
        finish = "length" if usage.output_tokens == self.max_tokens else "stop"
        return Completion(text.text, usage, total_us=total, prompt_us=prompt_us,
                          generation_us=gen_us, finish_reason=finish)  # fmt: skip


class _Reader:
    """Reads a pipe in a thread so the caller can wait for each piece with a timeout."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._q: queue.Queue[str | None] = queue.Queue()
        self._pipe = pipe
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while data := os.read(self._pipe.fileno(), 4096):
            self._q.put(decoder.decode(data))
        last = decoder.decode(b"", final=True)
        if last:
            self._q.put(last)
        self._q.put(None)

    def next(self, timeout_s: float) -> str | None:
        try:
            while (piece := self._q.get(timeout=timeout_s)) == "":
                pass
        except queue.Empty:
            raise TimeoutError from None
        return piece

    def rest(self, timeout_s: float = 2.0) -> str:
        parts: list[str] = []
        try:
            while (piece := self.next(timeout_s)) is not None:
                parts.append(piece)
        except TimeoutError:
            pass
        return "".join(parts)


class _TextFilter:
    """Keeps the text between the two separator lines, streaming it as it arrives."""

    def __init__(self, on_chunk: OnChunk | None) -> None:
        self.on_chunk = on_chunk
        self.state = "head"
        self.buffer = ""
        self.parts: list[str] = []
        self.tail = ""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, data: str) -> None:
        if self.state == "tail":
            self.tail += data
            return
        self.buffer += data
        if self.state == "head":
            start = self.buffer.find(SEPARATOR + "\n")
            if start < 0:
                return
            self.buffer = self.buffer[start + len(SEPARATOR) + 1 :]
            self.state = "body"
        end = self.buffer.find("\n" + SEPARATOR)
        if end >= 0:
            self._emit(self.buffer[:end])
            self.tail, self.buffer, self.state = self.buffer[end + 1 + len(SEPARATOR) :], "", "tail"
            return
        keep = len(SEPARATOR) + 1  # a separator may be split across two reads
        self._emit(self.buffer[:-keep])
        self.buffer = self.buffer[-keep:]

    def finish(self) -> None:
        """The output ended: text still held back (no closing separator) is text."""
        if self.state == "body":
            self._emit(self.buffer)
            self.buffer, self.state = "", "tail"

    def _emit(self, piece: str) -> None:
        if piece:
            self.parts.append(piece)
            if self.on_chunk is not None:
                self.on_chunk(Chunk(piece))
