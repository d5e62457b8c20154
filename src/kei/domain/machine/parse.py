"""What each probe command printed, read into the values of ``machine.py`` (upstream
kei-machine-probe, spec §7).

Pure: each parser takes the text one command printed, or ``None`` when the command was
missing or failed, and never raises on odd text. Running the commands is
``adapters/machine/probe.py``; this module only reads what they printed.

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

Deliberate changes:

- An unreadable field is ``None``, not upstream's 0 or empty string, and every GPU found is
  kept, best first (upstream keeps one).
- The variant table adds the M3 Ultra, which upstream's table calls an M3.

Example::

    >>> parse_tool_version("ollama version is 0.5.7")
    '0.5.7'
    >>> apple_variant("Apple M2 Pro").value
    'M2Pro'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from msgspec import Struct

from kei.domain.machine.facts import (
    GIB,
    KIB,
    MIB,
    AppleIntegrated,
    AppleVariant,
    CpuKind,
    Discrete,
    Gpu,
    IntelIntegrated,
    Memory,
    Os,
    OsFamily,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "CpuFacts",
    "apple_variant",
    "classify_cpu",
    "first_line",
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
    "round_half_up",
]

DEFAULT_PAGE_SIZE: Final = 16 * KIB

# Most specific first: "m2 pro" must be tried before "m2". "m3 ultra" is kei's addition.
_VARIANTS: Final = (
    ("m4 max", AppleVariant.M4_MAX), ("m4 pro", AppleVariant.M4_PRO), ("m4", AppleVariant.M4),
    ("m3 ultra", AppleVariant.M3_ULTRA), ("m3 max", AppleVariant.M3_MAX),
    ("m3 pro", AppleVariant.M3_PRO), ("m3", AppleVariant.M3),
    ("m2 ultra", AppleVariant.M2_ULTRA), ("m2 max", AppleVariant.M2_MAX),
    ("m2 pro", AppleVariant.M2_PRO), ("m2", AppleVariant.M2),
    ("m1 ultra", AppleVariant.M1_ULTRA), ("m1 max", AppleVariant.M1_MAX),
    ("m1 pro", AppleVariant.M1_PRO), ("m1", AppleVariant.M1),
)  # fmt: skip


class CpuFacts(Struct, frozen=True):
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


def round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounded half up, in ints: upstream's rounding of memory pressure,
    which ``machine_recommend`` also uses for VRAM in whole GiB."""
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
    pressure = round_half_up(100 * used, total_bytes) if total_bytes else None
    return Memory(total_bytes, available, pressure)


def parse_meminfo(text: str | None) -> Memory:
    """``/proc/meminfo``: ``MemTotal`` and ``MemAvailable`` (kB); pressure is the share in use."""
    found = _colon_fields(text)
    total = _kib(found.get("MemTotal"))
    available = _kib(found.get("MemAvailable"))
    pressure = None
    if total and available is not None:
        pressure = round_half_up(100 * max(total - available, 0), total)
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
