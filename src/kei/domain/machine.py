"""The machine a local model would run on, and what it can run (upstream kei-machine-probe).

Pure: each parser takes the text one command printed, or ``None`` when the command was
missing or failed, and never raises on odd text. Running the commands is
``adapters/machine_probe.py``; this module only reads what they printed (spec §7).

Upstream semantics kept:

- macOS is named by ``sw_vers``; other systems by ``uname -sr``.
- Apple Silicon when ``sysctl hw.optional.arm64`` is 1, its variant found in the brand
  string by substring, most specific first (``M2 Pro`` before ``M2``); Intel when the brand
  contains "intel". ``IntelX86_64`` names the instruction set, as upstream does, so an AMD
  x86-64 CPU on Linux is ``IntelX86_64`` too.
- ``vm_stat``: ``available = (free + inactive + speculative + purgeable) x page`` and
  ``pressure = (wired + active + compressed) x page / total`` (rounded, half up); the page
  size comes from the header line, 16 KiB when it is missing.
- GPUs from ``system_profiler SPDisplaysDataType -json``, Apple before discrete before Intel.
- ``recommend`` on macOS is upstream's table exactly, with ``GB = floor(total / 2^30)``.

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
- What could not be read is ``None``, not upstream's 0 or empty string, so "unknown" and
  "zero" differ. Every GPU is kept (upstream keeps one), best first; ``Machine.gpu`` is the
  best. The variant table adds the M3 Ultra, which upstream's table calls an M3.

Example::

    >>> parse_tool_version("ollama version is 0.5.7")
    '0.5.7'
    >>> apple_variant("Apple M2 Pro").value
    'M2Pro'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any, Final, TypeAlias

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "GIB",
    "AppleIntegrated",
    "AppleVariant",
    "Arch",
    "Capability",
    "CpuFacts",
    "CpuKind",
    "Discrete",
    "Gpu",
    "IntelIntegrated",
    "Machine",
    "Memory",
    "Os",
    "OsFamily",
    "Recommendation",
    "Tooling",
    "apple_variant",
    "classify_cpu",
    "first_line",
    "gpu_to_dict",
    "parse_cpuinfo",
    "parse_int",
    "parse_lscpu",
    "parse_meminfo",
    "parse_nvidia_smi",
    "parse_sw_vers",
    "parse_system_profiler_displays",
    "parse_tool_version",
    "parse_uname_sr",
    "parse_vm_stat",
    "recommend",
]

GIB: Final = 1 << 30
MIB: Final = 1 << 20
KIB: Final = 1 << 10
DEFAULT_PAGE_SIZE: Final = 16 * KIB


class OsFamily(Enum):
    MACOS = "Macos"
    LINUX = "Linux"
    OTHER = "Other"


class CpuKind(Enum):
    APPLE_SILICON = "AppleSilicon"
    INTEL_X86_64 = "IntelX86_64"
    ARM64 = "Arm64"
    OTHER = "Other"


class AppleVariant(Enum):
    M1 = "M1"
    M1_PRO = "M1Pro"
    M1_MAX = "M1Max"
    M1_ULTRA = "M1Ultra"
    M2 = "M2"
    M2_PRO = "M2Pro"
    M2_MAX = "M2Max"
    M2_ULTRA = "M2Ultra"
    M3 = "M3"
    M3_PRO = "M3Pro"
    M3_MAX = "M3Max"
    M3_ULTRA = "M3Ultra"
    M4 = "M4"
    M4_PRO = "M4Pro"
    M4_MAX = "M4Max"
    UNKNOWN = "Unknown"


# Most specific first: "m2 pro" must be tried before "m2".
_VARIANTS: Final = (
    ("m4 max", AppleVariant.M4_MAX), ("m4 pro", AppleVariant.M4_PRO), ("m4", AppleVariant.M4),
    ("m3 ultra", AppleVariant.M3_ULTRA), ("m3 max", AppleVariant.M3_MAX),
    ("m3 pro", AppleVariant.M3_PRO), ("m3", AppleVariant.M3),
    ("m2 ultra", AppleVariant.M2_ULTRA), ("m2 max", AppleVariant.M2_MAX),
    ("m2 pro", AppleVariant.M2_PRO), ("m2", AppleVariant.M2),
    ("m1 ultra", AppleVariant.M1_ULTRA), ("m1 max", AppleVariant.M1_MAX),
    ("m1 pro", AppleVariant.M1_PRO), ("m1", AppleVariant.M1),
)  # fmt: skip


class Capability(Enum):
    """What size of model the machine runs locally, upstream's four tiers."""

    RUNS_LARGE_MODELS = "RunsLargeModels"
    RUNS_MID_MODELS = "RunsMidModels"
    RUNS_SMALL_MODELS_ONLY = "RunsSmallModelsOnly"
    NO_LOCAL_INFERENCE_VIABLE = "NoLocalInferenceViable"


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Os:
    family: OsFamily
    version: str | None = None
    build: str | None = None


@dataclass(frozen=True, slots=True)
class Arch:
    """The CPU. ``variant`` is set only for Apple Silicon."""

    kind: CpuKind
    variant: AppleVariant | None = None
    brand: str | None = None
    model_id: str | None = None
    cores: int | None = None

    @property
    def label(self) -> str:
        """``AppleSilicon M2Pro`` or ``IntelX86_64``."""
        return (
            self.kind.value if self.variant is None else f"{self.kind.value} {self.variant.value}"
        )


@dataclass(frozen=True, slots=True)
class Memory:
    total_bytes: int | None = None
    available_bytes: int | None = None
    pressure_pct: int | None = None


@dataclass(frozen=True, slots=True)
class AppleIntegrated:
    name: str
    cores: int | None = None


@dataclass(frozen=True, slots=True)
class IntelIntegrated:
    name: str


@dataclass(frozen=True, slots=True)
class Discrete:
    name: str
    vendor: str | None = None
    vram_bytes: int | None = None
    driver: str | None = None


Gpu: TypeAlias = AppleIntegrated | IntelIntegrated | Discrete


@dataclass(frozen=True, slots=True)
class Tooling:
    """Each tool's version when it was found (``unknown`` if it printed none), else None."""

    ollama: str | None = None
    llama_cpp: str | None = None
    mlx_lm: str | None = None
    python: str | None = None
    cargo: str | None = None
    homebrew: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Machine:
    """One probe's snapshot. ``tooling`` is None when tool discovery was skipped;
    ``source_commands`` lists the commands whose output the snapshot was built from."""

    os: Os
    arch: Arch
    memory: Memory
    gpus: tuple[Gpu, ...] = ()
    tooling: Tooling | None = None
    source_commands: tuple[str, ...] = ()

    @property
    def gpu(self) -> Gpu | None:
        """The most capable GPU (Apple, then discrete, then Intel), as upstream reports."""
        return self.gpus[0] if self.gpus else None

    def to_dict(self) -> dict[str, Any]:
        """JSON: upstream's keys, with ``gpus`` a list and unknowns as null."""
        family: dict[str, Any] = {"kind": self.arch.kind.value}
        if self.arch.variant is not None:
            family["variant"] = self.arch.variant.value
        return {
            "os": {"family": self.os.family.value, "version": self.os.version,
                   "build": self.os.build},
            "arch": {"family": family, "brand": self.arch.brand,
                     "model_id": self.arch.model_id, "cores": self.arch.cores},
            "memory": {"total_bytes": self.memory.total_bytes,
                       "available_bytes": self.memory.available_bytes,
                       "pressure_pct": self.memory.pressure_pct},
            "gpus": [gpu_to_dict(g) for g in self.gpus],
            "tooling": None if self.tooling is None else self.tooling.as_dict(),
            "source_commands": list(self.source_commands),
        }  # fmt: skip


def gpu_to_dict(gpu: Gpu) -> dict[str, Any]:
    """A GPU tagged by ``kind``, as upstream's serde does."""
    return {"kind": type(gpu).__name__, **{f.name: getattr(gpu, f.name) for f in fields(gpu)}}


@dataclass(frozen=True, slots=True)
class Recommendation:
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


@dataclass(frozen=True, slots=True)
class CpuFacts:
    """What /proc/cpuinfo or lscpu says about the CPU."""

    brand: str | None = None
    cores: int | None = None


# -- small text helpers ------------------------------------------------------------------


def first_line(text: str | None) -> str | None:
    """The first non-blank line, stripped (what ``sysctl -n`` prints), else None."""
    if text is None:
        return None
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def parse_int(text: str | None) -> int | None:
    """A whole number on the first line (``sysctl -n hw.ncpu``), else None."""
    line = first_line(text)
    if line is None or not line.isascii() or not line.isdigit():
        return None
    return int(line)


def _colon_fields(text: str | None) -> dict[str, str]:
    """``Key: value`` lines as a dict; the first occurrence of a key wins."""
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            found.setdefault(key.strip(), value.strip())
    return found


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


# -- OS ----------------------------------------------------------------------------------


def parse_sw_vers(text: str | None) -> Os | None:
    """``sw_vers``: ``ProductVersion`` and ``BuildVersion``; None if it names no version."""
    found = _colon_fields(text)
    version = found.get("ProductVersion") or None
    if version is None:
        return None
    return Os(OsFamily.MACOS, version, found.get("BuildVersion") or None)


def parse_uname_sr(text: str | None) -> Os | None:
    """``uname -sr``: Linux and Darwin by kernel name; anything else keeps its whole line."""
    line = first_line(text)
    if line is None:
        return None
    kernel, _, release = line.partition(" ")
    family = {"Linux": OsFamily.LINUX, "Darwin": OsFamily.MACOS}.get(kernel, OsFamily.OTHER)
    version = line if family is OsFamily.OTHER else release.strip() or None
    return Os(family, version)


# -- CPU ---------------------------------------------------------------------------------


def apple_variant(brand: str | None) -> AppleVariant:
    """The Apple chip named in a brand string, by substring, most specific first."""
    lowered = (brand or "").lower()
    return next((v for needle, v in _VARIANTS if needle in lowered), AppleVariant.UNKNOWN)


def classify_cpu(
    *, arm64_flag: str | None, brand: str | None, machine: str | None, os_family: OsFamily
) -> tuple[CpuKind, AppleVariant | None]:
    """Upstream's rule (arm64 flag, then "intel" in the brand), then ``uname -m``."""
    if first_line(arm64_flag) == "1":
        return CpuKind.APPLE_SILICON, apple_variant(brand)
    if "intel" in (brand or "").lower():
        return CpuKind.INTEL_X86_64, None
    arch = (first_line(machine) or "").lower()
    if arch in {"x86_64", "amd64"}:
        return CpuKind.INTEL_X86_64, None
    if arch in {"arm64", "aarch64"}:
        if os_family is OsFamily.MACOS:
            return CpuKind.APPLE_SILICON, apple_variant(brand)
        return CpuKind.ARM64, None
    return CpuKind.OTHER, None


def parse_cpuinfo(text: str | None) -> CpuFacts:
    """``/proc/cpuinfo``: the first ``model name`` and the number of ``processor`` entries."""
    brand: str | None = None
    cores = 0
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            cores += 1
        elif key == "model name" and brand is None and value.strip():
            brand = value.strip()
    return CpuFacts(brand, cores or None)


def parse_lscpu(text: str | None) -> CpuFacts:
    """``lscpu`` (C locale): ``Model name`` and ``CPU(s)``."""
    found = _colon_fields(text)
    return CpuFacts(found.get("Model name") or None, parse_int(found.get("CPU(s)")))


# -- memory ------------------------------------------------------------------------------

_PAGE_SIZE: Final = re.compile(r"page size of (\d+) bytes")
_VM_LINE: Final = re.compile(r'^"?([A-Za-z][^":]*)"?:\s*(\d+)\.?\s*$')
_FREE_PAGES: Final = ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable")
_USED_PAGES: Final = ("Pages wired down", "Pages active", "Pages occupied by compressor")


def parse_vm_stat(text: str | None, total_bytes: int | None) -> Memory:
    """``vm_stat`` plus ``hw.memsize``: upstream's available and pressure formulas."""
    counts = {
        m.group(1).strip(): int(m.group(2))
        for m in (_VM_LINE.match(line.strip()) for line in (text or "").splitlines())
        if m is not None
    }
    if not any(k in counts for k in (*_FREE_PAGES, *_USED_PAGES)):
        return Memory(total_bytes)
    header = _PAGE_SIZE.search(text or "")
    page = int(header.group(1)) if header else DEFAULT_PAGE_SIZE
    available = sum(counts.get(k, 0) for k in _FREE_PAGES) * page
    used = sum(counts.get(k, 0) for k in _USED_PAGES) * page
    pressure = _round_half_up(100 * used, total_bytes) if total_bytes else None
    return Memory(total_bytes, available, pressure)


def parse_meminfo(text: str | None) -> Memory:
    """``/proc/meminfo``: ``MemTotal`` and ``MemAvailable`` (kB); pressure is the share in use."""
    found = _colon_fields(text)
    total = _kib(found.get("MemTotal"))
    available = _kib(found.get("MemAvailable"))
    pressure = None
    if total and available is not None:
        pressure = _round_half_up(100 * max(total - available, 0), total)
    return Memory(total, available, pressure)


def _kib(value: str | None) -> int | None:
    number = parse_int((value or "").removesuffix("kB"))
    return None if number is None else number * KIB


# -- GPU ---------------------------------------------------------------------------------

_VRAM: Final = re.compile(r"(\d+)\s*(GB|MB)", re.IGNORECASE)
_VENDORS: Final = {"amd": "AMD", "ati": "AMD", "nvidia": "NVIDIA", "intel": "Intel",
                   "apple": "Apple"}  # fmt: skip


def parse_system_profiler_displays(text: str | None) -> tuple[Gpu, ...]:
    """``system_profiler SPDisplaysDataType -json``: every GPU, Apple > discrete > Intel."""
    try:
        root = json.loads(text or "")
    except ValueError:
        return ()
    items = root.get("SPDisplaysDataType") if isinstance(root, dict) else None
    if not isinstance(items, list):
        return ()
    gpus = [g for g in (_display_entry(i) for i in items if isinstance(i, dict)) if g]
    return tuple(sorted(gpus, key=_gpu_rank))


def _display_entry(item: Mapping[str, Any]) -> Gpu | None:
    name = _text(item, "sppci_model")
    if name is None:
        return None
    if name.startswith("Apple"):
        return AppleIntegrated(name, parse_int(_text(item, "sppci_cores")))
    if "intel" in name.lower():
        return IntelIntegrated(name)
    vendor = _vendor(_text(item, "spdisplays_vendor") or _text(item, "sppci_vendor"))
    vram = _vram_bytes(_text(item, "spdisplays_vram") or _text(item, "sppci_vram"))
    return Discrete(name, vendor, vram)


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _vendor(raw: str | None) -> str | None:
    """``sppci_vendor_amd`` -> ``AMD``; ``NVIDIA (0x10de)`` -> ``NVIDIA``."""
    if raw is None:
        return None
    key = raw.removeprefix("sppci_vendor_").split(" (")[0].strip()
    return _VENDORS.get(key.lower(), key) or None


def _vram_bytes(raw: str | None) -> int | None:
    match = _VRAM.search(raw or "")
    if match is None:
        return None
    return int(match.group(1)) * (GIB if match.group(2).upper() == "GB" else MIB)


def _gpu_rank(gpu: Gpu) -> int:
    if isinstance(gpu, AppleIntegrated):
        return 0
    return 1 if isinstance(gpu, Discrete) else 2


def parse_nvidia_smi(text: str | None) -> tuple[Gpu, ...]:
    """``nvidia-smi --query-gpu=name,memory.total,driver_version
    --format=csv,noheader,nounits``: one GPU per line, memory in MiB (``[N/A]`` is None)."""
    gpus: list[Gpu] = []
    for line in (text or "").splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[0]:
            continue
        name, memory, driver = parts
        mib = parse_int(memory)
        gpus.append(Discrete(name, "NVIDIA", None if mib is None else mib * MIB, driver or None))
    return tuple(gpus)


# -- tooling -----------------------------------------------------------------------------

_VERSION_WORD: Final = re.compile(r"version(?:\s+is)?[:\s]+v?(\d+(?:\.\d+){0,3})", re.IGNORECASE)
_DOTTED: Final = re.compile(r"v?(\d+\.\d+(?:\.\d+){0,2})")


def parse_tool_version(text: str | None) -> str | None:
    """A ``--version`` output's version: ``version[:] N`` or ``version is N`` (llama.cpp,
    ollama), else the first dotted number (python, cargo, brew, mlx_lm), else the first
    line; ``unknown`` for a tool that printed nothing, None for one that was not found."""
    if text is None:
        return None
    match = _VERSION_WORD.search(text) or _DOTTED.search(text)
    if match is not None:
        return match.group(1)
    return first_line(text) or "unknown"


# -- recommendation ----------------------------------------------------------------------

_APPLE_BACKENDS: Final = ("mlx", "llamacpp", "ollama")
_CPU_BACKENDS: Final = ("llamacpp", "ollama")
_LARGE_VRAM_GB: Final = 24
_MID_VRAM_GB: Final = 8
_LINUX_NOTE: Final = (
    "Deliberate change: kei judges Linux; upstream calls every OS but macOS not viable."
)


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


def _macos(machine: Machine) -> Recommendation:
    gb = (machine.memory.total_bytes or 0) // GIB
    kind = machine.arch.kind
    if kind is CpuKind.APPLE_SILICON:
        return _with_unknown_memory(_apple(gb), machine)
    if kind is CpuKind.INTEL_X86_64:
        return _with_unknown_memory(_intel_mac(gb), machine)
    return _not_viable("Unknown CPU family: cannot map to a backend tier.")


def _apple(gb: int) -> Recommendation:
    if gb >= 16:
        return _tier(
            Capability.RUNS_LARGE_MODELS, _APPLE_BACKENDS, 13,
            f"Apple Silicon, {gb} GB unified memory: MLX / Metal viable.",
            "Max about 13B params (q4) or 7B (q8) without losing OOM headroom.",
        )  # fmt: skip
    if gb >= 8:
        return _tier(
            Capability.RUNS_MID_MODELS, _APPLE_BACKENDS, 7,
            f"Apple Silicon, {gb} GB unified memory.",
            "Max about 7B params (q4); 13B is tight, MLX / Metal still preferred.",
        )  # fmt: skip
    return _tier(
        Capability.RUNS_SMALL_MODELS_ONLY, _CPU_BACKENDS, 3,
        f"Apple Silicon, only {gb} GB unified memory.",
        "Max about 3-4B params (q4); MLX skipped, too tight for the KV cache.",
    )  # fmt: skip


def _intel_mac(gb: int) -> Recommendation:
    if gb >= 16:
        return _tier(
            Capability.RUNS_MID_MODELS, _CPU_BACKENDS, 7,
            f"Intel x86_64, {gb} GB RAM: CPU-only inference (no Metal acceleration).",
            "Max about 7B q4 (slow); MLX excluded (Apple Silicon only).",
        )  # fmt: skip
    return _tier(
        Capability.RUNS_SMALL_MODELS_ONLY, ("ollama",), 3,
        f"Intel x86_64 with only {gb} GB RAM.",
        "Max about 3B q4 via Ollama (very slow); llama.cpp omitted.",
    )  # fmt: skip


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
    return None if n is None else _round_half_up(n, GIB)


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
