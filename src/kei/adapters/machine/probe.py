"""Probe this machine: run the commands, hand their output to ``kei.domain.machine.parse``.

Every command goes through a ``Runner``, so a folder of captured outputs
(``FixtureRunner``, upstream's ``--mock-dir``) replays any platform on any other. A runner
answers ``None`` for a command that is missing, fails or times out; the probe then leaves
that field ``None`` and never raises. Files (``/proc/cpuinfo``) are read through the runner
too, as if by ``cat``, so fixtures cover them.

Which commands run depends on the OS found first: ``sw_vers`` (macOS: ``sysctl -n`` per key,
``vm_stat``, ``system_profiler``), else ``uname -sr`` (Linux: ``/proc/cpuinfo``,
``/proc/meminfo``, ``lscpu`` only to fill gaps, ``nvidia-smi``). ``source_commands`` lists
the commands that answered (upstream lists a fixed set, whether they ran or not).

Fixture names follow upstream: the command line with every character outside
``[A-Za-z0-9._-]`` turned into ``_``, plus ``.stdout`` (``sysctl -n hw.model`` is
``sysctl_-n_hw.model.stdout``; ``/proc/meminfo`` is ``cat__proc_meminfo.stdout``).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

from kei.domain.machine.facts import Arch, Gpu, Machine, Memory, Os, OsFamily, Tooling
from kei.domain.machine.parse import (
    CpuFacts,
    classify_cpu,
    first_line,
    parse_cpuinfo,
    parse_int,
    parse_lscpu,
    parse_meminfo,
    parse_nvidia_smi,
    parse_sw_vers,
    parse_system_profiler_displays,
    parse_tool_version,
    parse_uname_sr,
    parse_vm_stat,
)
from kei.errors import InputError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "NVIDIA_SMI",
    "TOOL_COMMANDS",
    "FixtureRunner",
    "Runner",
    "SubprocessRunner",
    "fixture_stem",
    "probe",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: Final = 5.0
NVIDIA_SMI: Final = (
    "nvidia-smi",
    "--query-gpu=name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
)
SYSTEM_PROFILER: Final = ("system_profiler", "SPDisplaysDataType", "-json")
# Each tool: the commands to try, in order; the first that answers gives the version.
TOOL_COMMANDS: Final = (
    ("ollama", (("ollama", "--version"),)),
    ("llama_cpp", (("llama-server", "--version"), ("llama-cli", "--version"))),
    ("mlx_lm", (("mlx_lm", "--version"),)),
    ("python", (("python3", "--version"), ("python", "--version"))),
    ("cargo", (("cargo", "--version"),)),
    ("homebrew", (("brew", "--version"),)),
)
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


class Runner(Protocol):
    """Runs a command or reads a file; None when it is missing or fails."""

    def run(self, argv: Sequence[str]) -> str | None: ...

    def read(self, path: str) -> str | None: ...


class SubprocessRunner:
    """The real machine: each command under a timeout, in the C locale (stable output).

    A command's stdout is its answer; when stdout is blank, stderr is (llama.cpp prints its
    ``--version`` there). A non-zero exit, a timeout or a missing binary is None.
    """

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(self, argv: Sequence[str]) -> str | None:
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=self.timeout_s,
                env=self._env,
                check=False,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.debug("%s: %s", argv[0], exc)
            return None
        if done.returncode != 0:
            log.debug("%s exited %d", argv[0], done.returncode)
            return None
        return done.stdout if done.stdout.strip() else done.stderr

    def read(self, path: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.debug("%s: %s", path, exc)
            return None


class FixtureRunner:
    """Captured outputs: ``<folder>/<stem>.stdout`` per command; a missing file is a
    missing command."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise InputError(
                f"--mock-dir {folder} is not a directory",
                hint="give a folder of <command>.stdout files, e.g. tests/fixtures/probe/linux",
            )
        self.folder = folder

    def run(self, argv: Sequence[str]) -> str | None:
        path = self.folder / f"{fixture_stem(argv)}.stdout"
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def read(self, path: str) -> str | None:
        return self.run(("cat", path))


def fixture_stem(argv: Sequence[str]) -> str:
    """Upstream's fixture name: ``sysctl -n hw.model`` -> ``sysctl_-n_hw.model``."""
    return _UNSAFE.sub("_", " ".join(argv))


class _Recorder:
    """Passes calls on and remembers which commands answered."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self.used: list[str] = []

    def run(self, *argv: str) -> str | None:
        return self._note(" ".join(argv), self._runner.run(argv))

    def read(self, path: str) -> str | None:
        return self._note(f"cat {path}", self._runner.read(path))

    def _note(self, command: str, out: str | None) -> str | None:
        if out is not None:
            self.used.append(command)
        return out


def probe(runner: Runner, *, tooling: bool = True) -> Machine:
    """Everything the runner can tell about the machine; ``tooling=False`` skips the tools."""
    r = _Recorder(runner)
    os_info = _os(r)
    if os_info.family is OsFamily.MACOS:
        arch, memory, gpus = _macos(r)
    elif os_info.family is OsFamily.LINUX:
        arch, memory, gpus = _linux(r)
    else:
        arch, memory, gpus = _other(r)
    tools = _tooling(r) if tooling else None
    return Machine(os_info, arch, memory, gpus, tools, tuple(r.used))


def _os(r: _Recorder) -> Os:
    return (
        parse_sw_vers(r.run("sw_vers"))
        or parse_uname_sr(r.run("uname", "-sr"))
        or Os(OsFamily.OTHER)
    )


def _macos(r: _Recorder) -> tuple[Arch, Memory, tuple[Gpu, ...]]:
    arm64 = r.run("sysctl", "-n", "hw.optional.arm64")
    brand = first_line(r.run("sysctl", "-n", "machdep.cpu.brand_string"))
    cores = parse_int(r.run("sysctl", "-n", "hw.ncpu"))
    model_id = first_line(r.run("sysctl", "-n", "hw.model"))
    machine = r.run("uname", "-m")
    kind, variant = classify_cpu(
        arm64_flag=arm64, brand=brand, machine=machine, os_family=OsFamily.MACOS
    )
    total = parse_int(r.run("sysctl", "-n", "hw.memsize"))
    memory = parse_vm_stat(r.run("vm_stat"), total)
    gpus = parse_system_profiler_displays(r.run(*SYSTEM_PROFILER))
    return Arch(kind, variant, brand, model_id, cores), memory, gpus


def _linux(r: _Recorder) -> tuple[Arch, Memory, tuple[Gpu, ...]]:
    cpu = parse_cpuinfo(r.read("/proc/cpuinfo"))
    if cpu.brand is None or cpu.cores is None:
        cpu = _fill(cpu, parse_lscpu(r.run("lscpu")))
    kind, variant = classify_cpu(
        arm64_flag=None, brand=cpu.brand, machine=r.run("uname", "-m"), os_family=OsFamily.LINUX
    )
    memory = parse_meminfo(r.read("/proc/meminfo"))
    gpus = parse_nvidia_smi(r.run(*NVIDIA_SMI))
    return Arch(kind, variant, cpu.brand, None, cpu.cores), memory, gpus


def _other(r: _Recorder) -> tuple[Arch, Memory, tuple[Gpu, ...]]:
    kind, variant = classify_cpu(
        arm64_flag=None, brand=None, machine=r.run("uname", "-m"), os_family=OsFamily.OTHER
    )
    return Arch(kind, variant), Memory(), ()


def _fill(first: CpuFacts, second: CpuFacts) -> CpuFacts:
    return CpuFacts(first.brand or second.brand, first.cores or second.cores)


def _tooling(r: _Recorder) -> Tooling:
    found: dict[str, str | None] = {}
    for name, commands in TOOL_COMMANDS:
        outputs = (r.run(*argv) for argv in commands)
        found[name] = parse_tool_version(next((o for o in outputs if o is not None), None))
    return Tooling(**found)
