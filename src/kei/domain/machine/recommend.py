"""What size of local model a probed machine can run, and with which backends (upstream
kei-machine-probe's recommendation table, spec §7).

Upstream semantics kept: ``recommend`` on macOS is upstream's table exactly, with
``GB = floor(total / 2^30)``.

Deliberate changes:

- Linux is judged, not refused. Upstream declares every OS but macOS
  ``NoLocalInferenceViable``, yet Ollama and llama.cpp run on Linux, often on an NVIDIA GPU.
  kei tiers Linux (x86-64 or arm64) by RAM as upstream tiers an Intel Mac (>= 16 GB: mid
  models, 7B; less: small models, 3B), with the backends llamacpp and ollama, and lifts it by
  its largest NVIDIA GPU: >= 24 GB of VRAM runs large models (13B), >= 8 GB mid ones (7B).
  Windows and other systems stay ``NoLocalInferenceViable``.
- Linux RAM counts in whole GiB rounded *up*: ``MemTotal`` leaves out what firmware and the
  kernel reserve, so a 16 GB machine reports about 15.5 GiB and flooring would demote it.
  VRAM rounds to the *nearest* GiB for the same reason (an RTX 4090 reports 24564 MiB).

Example::

    >>> from kei.domain.machine.facts import GIB, Arch, CpuKind, Machine, Memory, Os, OsFamily
    >>> m = Machine(Os(OsFamily.LINUX), Arch(CpuKind.ARM64), Memory(16 * GIB))
    >>> recommend(m).capability.value, recommend(m).max_params_b
    ('RunsMidModels', 7)
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any, Final, NamedTuple

from msgspec import Struct
from msgspec.structs import replace

from kei.domain.machine.facts import GIB, CpuKind, Discrete, Gpu, Machine, OsFamily
from kei.domain.machine.parse import round_half_up

__all__ = ["Capability", "Recommendation", "recommend"]

_APPLE_BACKENDS: Final = ("mlx", "llamacpp", "ollama")
_CPU_BACKENDS: Final = ("llamacpp", "ollama")
_LARGE_VRAM_GB: Final = 24
_MID_VRAM_GB: Final = 8
_LINUX_NOTE: Final = (
    "Deliberate change: kei judges Linux; upstream calls every OS but macOS not viable."
)


class Recommendation(Struct, frozen=True):
    """What the machine can run: backends best first (mlx, llamacpp, ollama), and why."""

    capability: Capability
    backends: tuple[str, ...]
    max_params_b: int
    rationale: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "capability": self.capability.value,
            "backends": list(self.backends),
            "max_params_b": self.max_params_b,
            "rationale": list(self.rationale),
        }


class Capability(Enum):
    """What size of model the machine runs locally, upstream's four tiers."""

    RUNS_LARGE_MODELS = "RunsLargeModels"
    RUNS_MID_MODELS = "RunsMidModels"
    RUNS_SMALL_MODELS_ONLY = "RunsSmallModelsOnly"
    NO_LOCAL_INFERENCE_VIABLE = "NoLocalInferenceViable"


def recommend(machine: Machine) -> Recommendation:
    """Upstream's table on macOS; kei's Linux tiers (module docstring); else not viable."""
    family = machine.os.family
    if family is OsFamily.MACOS:
        return _macos(machine)
    if family is OsFamily.LINUX:
        return _linux(machine)
    return _not_viable(
        f"No local inference on OS family {family.value}: kei judges macOS and Linux only."
    )


def _not_viable(reason: str) -> Recommendation:
    return Recommendation(Capability.NO_LOCAL_INFERENCE_VIABLE, (), 0, (reason,))


def _tier(
    capability: Capability, backends: tuple[str, ...], params: int, *why: str
) -> Recommendation:
    return Recommendation(capability, backends, params, why)


def _with_unknown_memory(advice: Recommendation, machine: Machine) -> Recommendation:
    if machine.memory.total_bytes is not None:
        return advice
    return replace(advice, rationale=(*advice.rationale, "Total memory unknown: counted as 0 GB."))


# -- macOS: upstream's table ---------------------------------------------------------------


class _MacTier(NamedTuple):
    """One row of upstream's macOS table: a machine with at least ``min_gb`` of memory
    (the first row it reaches, in the order listed); ``{gb}`` in the rationale stands
    for that memory."""

    min_gb: int
    capability: Capability
    backends: tuple[str, ...]
    max_params_b: int
    rationale: tuple[str, ...]


_MAC_TABLE: Final[dict[CpuKind, tuple[_MacTier, ...]]] = {
    CpuKind.APPLE_SILICON: (
        _MacTier(16, Capability.RUNS_LARGE_MODELS, _APPLE_BACKENDS, 13, (
            "Apple Silicon, {gb} GB unified memory: MLX / Metal viable.",
            "Max about 13B params (q4) or 7B (q8) without losing OOM headroom.",
        )),
        _MacTier(8, Capability.RUNS_MID_MODELS, _APPLE_BACKENDS, 7, (
            "Apple Silicon, {gb} GB unified memory.",
            "Max about 7B params (q4); 13B is tight, MLX / Metal still preferred.",
        )),
        _MacTier(0, Capability.RUNS_SMALL_MODELS_ONLY, _CPU_BACKENDS, 3, (
            "Apple Silicon, only {gb} GB unified memory.",
            "Max about 3-4B params (q4); MLX skipped, too tight for the KV cache.",
        )),
    ),
    CpuKind.INTEL_X86_64: (
        _MacTier(16, Capability.RUNS_MID_MODELS, _CPU_BACKENDS, 7, (
            "Intel x86_64, {gb} GB RAM: CPU-only inference (no Metal acceleration).",
            "Max about 7B q4 (slow); MLX excluded (Apple Silicon only).",
        )),
        _MacTier(0, Capability.RUNS_SMALL_MODELS_ONLY, ("ollama",), 3, (
            "Intel x86_64 with only {gb} GB RAM.",
            "Max about 3B q4 via Ollama (very slow); llama.cpp omitted.",
        )),
    ),
}  # fmt: skip


def _macos(machine: Machine) -> Recommendation:
    gb = (machine.memory.total_bytes or 0) // GIB
    tiers = _MAC_TABLE.get(machine.arch.kind)
    if tiers is None:
        return _not_viable("Unknown CPU family: cannot map to a backend tier.")
    row = next((t for t in tiers if gb >= t.min_gb), tiers[-1])
    why = (line.format(gb=gb) for line in row.rationale)
    return _with_unknown_memory(
        _tier(row.capability, row.backends, row.max_params_b, *why), machine
    )


# -- Linux: kei's tiers (deliberate change) ------------------------------------------------


def _linux(machine: Machine) -> Recommendation:
    kind = machine.arch.kind
    if kind not in {CpuKind.INTEL_X86_64, CpuKind.ARM64}:
        return _not_viable("Unknown CPU family: cannot map to a backend tier.")
    gb = -(-(machine.memory.total_bytes or 0) // GIB)
    capability, params = (
        (Capability.RUNS_MID_MODELS, 7) if gb >= 16 else (Capability.RUNS_SMALL_MODELS_ONLY, 3)
    )
    why = [f"Linux {kind.value}, {gb} GB RAM (MemTotal rounded up): CPU inference of about "
           f"{params}B q4."]  # fmt: skip
    best = _largest_nvidia(machine.gpus)
    if best is not None:
        why.append(_gpu_note(best))
        lifted = _vram_tier(_nearest_gib(best.vram_bytes))
        if lifted is not None and lifted[1] > params:
            capability, params = lifted
    why.append(_LINUX_NOTE)
    return _with_unknown_memory(_tier(capability, _CPU_BACKENDS, params, *why), machine)


def _nearest_gib(n: int | None) -> int | None:
    return None if n is None else round_half_up(n, GIB)


def _gpu_note(gpu: Discrete) -> str:
    vram_gb = _nearest_gib(gpu.vram_bytes)
    if vram_gb is None:
        return f"GPU {gpu.name}, VRAM unknown: not counted."
    lifts = _vram_tier(vram_gb) is not None
    return (f"GPU {gpu.name}, {vram_gb} GB VRAM (nearest GiB): CUDA offload via llama.cpp or "
            f"Ollama{'' if lifts else ', too little to lift the tier'}.")  # fmt: skip


def _vram_tier(vram_gb: int | None) -> tuple[Capability, int] | None:
    if vram_gb is None:
        return None
    if vram_gb >= _LARGE_VRAM_GB:
        return Capability.RUNS_LARGE_MODELS, 13
    if vram_gb >= _MID_VRAM_GB:
        return Capability.RUNS_MID_MODELS, 7
    return None


def _largest_nvidia(gpus: Iterable[Gpu]) -> Discrete | None:
    """The NVIDIA GPU with the most VRAM: a model has to fit on one card."""
    nvidia = [g for g in gpus if isinstance(g, Discrete) and g.vendor == "NVIDIA"]
    return max(nvidia, key=lambda g: g.vram_bytes or 0, default=None)
