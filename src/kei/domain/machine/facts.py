"""The machine a local model would run on: the values one probe yields (upstream
kei-machine-probe, spec §7).

Reading the commands' output is ``machine_parse.py``; judging what the machine can run is
``machine_recommend.py``. Byte counts are plain ``int`` bytes; ``GIB``, ``MIB`` and ``KIB``
are their units.

Deliberate changes from upstream:

- What could not be read is ``None``, not upstream's 0 or empty string, so "unknown" and
  "zero" differ.
- Every GPU is kept (upstream keeps one), best first; ``Machine.gpu`` is the best.

Example::

    >>> Arch(CpuKind.APPLE_SILICON, AppleVariant.M2_PRO).label
    'AppleSilicon M2Pro'
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Final, TypeAlias

from msgspec import Struct
from msgspec.structs import fields

__all__ = [
    "GIB",
    "KIB",
    "MIB",
    "AppleIntegrated",
    "AppleVariant",
    "Arch",
    "CpuKind",
    "Discrete",
    "Gpu",
    "IntelIntegrated",
    "Machine",
    "Memory",
    "Os",
    "OsFamily",
    "Tooling",
    "gpu_to_dict",
]

GIB: Final = 1 << 30
MIB: Final = 1 << 20
KIB: Final = 1 << 10


class OsFamily(Enum):
    MACOS = "Macos"
    LINUX = "Linux"
    OTHER = "Other"


class CpuKind(Enum):
    """Upstream's names: ``IntelX86_64`` is the instruction set, so an AMD x86-64 CPU is one."""

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


class Os(Struct, frozen=True):
    family: OsFamily
    version: str | None = None
    build: str | None = None


class Arch(Struct, frozen=True):
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


class Memory(Struct, frozen=True):
    total_bytes: int | None = None
    available_bytes: int | None = None
    pressure_pct: int | None = None


class AppleIntegrated(Struct, frozen=True):
    name: str
    cores: int | None = None


class IntelIntegrated(Struct, frozen=True):
    name: str


class Discrete(Struct, frozen=True):
    name: str
    vendor: str | None = None
    vram_bytes: int | None = None
    driver: str | None = None


Gpu: TypeAlias = AppleIntegrated | IntelIntegrated | Discrete


class Tooling(Struct, frozen=True):
    """Each tool's version when it was found (``unknown`` if it printed none), else None."""

    ollama: str | None = None
    llama_cpp: str | None = None
    mlx_lm: str | None = None
    python: str | None = None
    cargo: str | None = None
    homebrew: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Machine(Struct, frozen=True):
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
