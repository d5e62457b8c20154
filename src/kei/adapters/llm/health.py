"""Is each local backend up enough to take a request? (upstream kei-llm-router ``health``)

:func:`check_all` answers for MLX, llama.cpp and Ollama, in that order (upstream's):

- MLX: the platform gate (macOS on Apple Silicon), then the ``mlx_lm.*`` binaries.
- llama.cpp: ``llama-server``/``llama-cli`` in ``$KEI_LLAMA_CPP_DIR`` or on ``PATH``, as
  upstream; kei also asks a running ``llama-server`` for ``/health``, so a server
  started by hand elsewhere counts, and the reason says which was found.
- Ollama: an HTTP probe of ``/api/version`` with a 1 s timeout.
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec import Struct

from kei.adapters.llm.llama_server import DEFAULT_URL as LLAMA_DEFAULT_URL
from kei.adapters.llm.llama_server import LlamaServerBackend
from kei.adapters.llm.llamacpp import find_binaries
from kei.adapters.llm.mlx import MlxBackend
from kei.adapters.llm.ollama import DEFAULT_URL as OLLAMA_DEFAULT_URL
from kei.adapters.llm.ollama import HEALTH_TIMEOUT_S, OllamaBackend
from kei.adapters.llm.protocol import Health, Timeouts

__all__ = ["Endpoints", "check_all", "check_llamacpp", "check_mlx", "check_ollama"]

_PROBE = Timeouts(connect_s=HEALTH_TIMEOUT_S, read_s=HEALTH_TIMEOUT_S)


class Endpoints(Struct, frozen=True):
    """Where the HTTP backends listen (``KEI_OLLAMA_URL``, ``KEI_LLAMA_SERVER_URL``)."""

    ollama: str = OLLAMA_DEFAULT_URL
    llama_server: str = LLAMA_DEFAULT_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Endpoints:
        return cls(
            ollama=env.get("KEI_OLLAMA_URL") or OLLAMA_DEFAULT_URL,
            llama_server=env.get("KEI_LLAMA_SERVER_URL") or LLAMA_DEFAULT_URL,
        )


def check_mlx(env: Mapping[str, str], *, system: str | None = None,
              machine: str | None = None) -> Health:  # fmt: skip
    return MlxBackend(env, system=system, machine=machine).health()


def check_llamacpp(env: Mapping[str, str], url: str) -> Health:
    bins = find_binaries(env)
    with LlamaServerBackend(url, _PROBE) as server:
        running = server.health()
    found = [f"{k}={p}" for k, p in (("cli", bins.cli), ("server", bins.server)) if p]
    if running.available:
        return Health("llamacpp", True, ", ".join([running.reason, *found]))
    if found:
        return Health("llamacpp", True, ", ".join(found) + f" (no server at {url})")
    return Health(
        "llamacpp", False, f"neither llama-cli nor llama-server on PATH; {running.reason}"
    )


def check_ollama(url: str) -> Health:
    with OllamaBackend(url, _PROBE) as ollama:
        return ollama.health()


def check_all(env: Mapping[str, str], endpoints: Endpoints) -> list[Health]:
    """MLX, llama.cpp, Ollama: upstream's order."""
    return [
        check_mlx(env),
        check_llamacpp(env, endpoints.llama_server),
        check_ollama(endpoints.ollama),
    ]
