"""Machine probe: parsing captured outputs of four platforms, upstream's recommendation table
and kei's Linux tiers, missing commands, the real subprocess runner and ``kei machine probe``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from kei.adapters.cli.commands import machine_cmd
from kei.adapters.cli.commands.machine_cmd import machine_app
from kei.adapters.machine.probe import (
    NVIDIA_SMI,
    FixtureRunner,
    SubprocessRunner,
    fixture_stem,
    probe,
)
from kei.domain.machine.facts import (
    GIB,
    AppleIntegrated,
    AppleVariant,
    Arch,
    CpuKind,
    Discrete,
    Gpu,
    IntelIntegrated,
    Machine,
    Memory,
    Os,
    OsFamily,
    Tooling,
)
from kei.domain.machine.parse import (
    DEFAULT_PAGE_SIZE,
    CpuFacts,
    apple_variant,
    classify_cpu,
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
from kei.domain.machine.recommend import Capability, Recommendation, recommend
from kei.errors import InputError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "probe"
MIB = 1 << 20
TOOL_COMMANDS = {
    "ollama --version",
    "llama-server --version",
    "llama-cli --version",
    "mlx_lm --version",
    "python3 --version",
    "python --version",
    "cargo --version",
    "brew --version",
}


def fixture(platform: str, stem: str) -> str:
    return (FIXTURES / platform / f"{stem}.stdout").read_text()


class DictRunner:
    """Answers from a dict keyed by command line (``cat <path>`` for files)."""

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def run(self, argv: Sequence[str]) -> str | None:
        self.asked.append(" ".join(argv))
        return self.answers.get(" ".join(argv))

    def read(self, path: str) -> str | None:
        return self.run(("cat", path))


# -- the four captured platforms -----------------------------------------------------------


def test_linux_x86_64_without_gpu() -> None:
    m = probe(FixtureRunner(FIXTURES / "linux"))
    assert m.os == Os(OsFamily.LINUX, "6.18.44-fc-v669", None)
    assert m.arch == Arch(CpuKind.INTEL_X86_64, None, "AMD EPYC", None, 2)
    assert m.memory == Memory(24_684_084 * 1024, 23_789_020 * 1024, 4)
    assert m.gpus == ()
    assert m.gpu is None
    assert m.tooling == Tooling(python="3.11.7", cargo="1.95.0")
    # cpuinfo named the CPU and counted it, so lscpu was not needed; nvidia-smi is absent.
    assert m.source_commands == (
        "uname -sr", "cat /proc/cpuinfo", "uname -m", "cat /proc/meminfo",
        "python3 --version", "cargo --version",
    )  # fmt: skip


def test_linux_with_nvidia_gpus() -> None:
    m = probe(FixtureRunner(FIXTURES / "nvidia"))
    assert m.os == Os(OsFamily.LINUX, "6.8.0-49-generic", None)
    assert m.arch == Arch(
        CpuKind.INTEL_X86_64, None, "12th Gen Intel(R) Core(TM) i7-12700K", None, 20
    )
    assert m.memory == Memory(32_567_948 * 1024, 26_418_876 * 1024, 19)
    assert m.gpus == (
        Discrete("NVIDIA GeForce RTX 4090", "NVIDIA", 24564 * MIB, "550.120"),
        Discrete("NVIDIA GeForce RTX 3060", "NVIDIA", 12288 * MIB, "550.120"),
    )
    # llama-server is missing, so llama-cli answers for llama.cpp.
    assert m.tooling == Tooling(ollama="0.5.7", llama_cpp="4404", python="3.12.3")
    assert " ".join(NVIDIA_SMI) in m.source_commands
    assert "llama-cli --version" in m.source_commands
    assert "llama-server --version" not in m.source_commands


def test_macos_intel() -> None:
    m = probe(FixtureRunner(FIXTURES / "macos-intel"))
    assert m.os == Os(OsFamily.MACOS, "13.6.9", "22G830")
    assert m.arch == Arch(
        CpuKind.INTEL_X86_64, None, "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz",
        "MacBookPro16,1", 16,
    )  # fmt: skip
    # vm_stat's header says 4 KiB pages: (52191 + 1349412 + 17730 + 91236) x 4096 available,
    # (712346 + 1385034 + 423377) x 4096 / 16 GiB = 60.1 % pressure.
    assert m.memory == Memory(16 * GIB, 6_187_290_624, 60)
    # The discrete AMD GPU is preferred to the Intel one, whatever order the JSON lists.
    assert m.gpus == (
        Discrete("AMD Radeon Pro 5500M", "AMD", 4 * GIB, None),
        IntelIntegrated("Intel UHD Graphics 630"),
    )
    assert m.tooling == Tooling(ollama="0.5.7", python="3.9.6", homebrew="4.4.15")
    assert "sysctl -n hw.optional.arm64" not in m.source_commands  # unknown oid on Intel
    assert "uname -sr" not in m.source_commands  # sw_vers answered


def test_apple_silicon_m2_pro() -> None:
    m = probe(FixtureRunner(FIXTURES / "apple-silicon"))
    assert m.os == Os(OsFamily.MACOS, "14.5", "23F79")
    assert m.arch == Arch(CpuKind.APPLE_SILICON, AppleVariant.M2_PRO, "Apple M2 Pro", "Mac14,9", 12)
    available = (7318 + 279112 + 3921 + 14087) * 16384
    pressure = round((160298 + 283467 + 215780) * 16384 * 100 / (16 * GIB))
    assert m.memory == Memory(16 * GIB, available, pressure)
    assert pressure == 63
    assert m.gpus == (AppleIntegrated("Apple M2 Pro", 19),)
    assert m.tooling == Tooling("0.5.7", "4404", "0.21.1", "3.12.8", "1.83.0", "4.4.15")
    assert m.source_commands == (
        "sw_vers",
        "sysctl -n hw.optional.arm64", "sysctl -n machdep.cpu.brand_string",
        "sysctl -n hw.ncpu", "sysctl -n hw.model", "uname -m", "sysctl -n hw.memsize",
        "vm_stat", "system_profiler SPDisplaysDataType -json",
        "ollama --version", "llama-server --version", "mlx_lm --version",
        "python3 --version", "cargo --version", "brew --version",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "capability", "backends", "params"),
    [
        ("linux", Capability.RUNS_MID_MODELS, ("llamacpp", "ollama"), 7),
        ("nvidia", Capability.RUNS_LARGE_MODELS, ("llamacpp", "ollama"), 13),
        ("macos-intel", Capability.RUNS_MID_MODELS, ("llamacpp", "ollama"), 7),
        ("apple-silicon", Capability.RUNS_LARGE_MODELS, ("mlx", "llamacpp", "ollama"), 13),
    ],
)
def test_fixture_recommendations(
    platform: str, capability: Capability, backends: tuple[str, ...], params: int
) -> None:
    advice = recommend(probe(FixtureRunner(FIXTURES / platform)))
    assert (advice.capability, advice.backends, advice.max_params_b) == (
        capability, backends, params,
    )  # fmt: skip
    assert advice.rationale


@pytest.mark.parametrize("platform", ["linux", "nvidia", "macos-intel", "apple-silicon"])
def test_no_tooling_skips_every_tool(platform: str) -> None:
    m = probe(FixtureRunner(FIXTURES / platform), tooling=False)
    assert m.tooling is None
    assert not TOOL_COMMANDS & set(m.source_commands)
    assert m == probe(FixtureRunner(FIXTURES / platform), tooling=False)


# -- parsers, one by one -------------------------------------------------------------------


def test_sw_vers_old_and_new_formats() -> None:
    assert parse_sw_vers(fixture("apple-silicon", "sw_vers")) == Os(OsFamily.MACOS, "14.5", "23F79")
    old = "ProductName:\tMac OS X\nProductVersion:\t10.15.7\nBuildVersion:\t19H2\n"
    assert parse_sw_vers(old) == Os(OsFamily.MACOS, "10.15.7", "19H2")
    assert parse_sw_vers("ProductVersion:\t11.7\n") == Os(OsFamily.MACOS, "11.7", None)
    assert parse_sw_vers("sw_vers: command not found") is None
    assert parse_sw_vers(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Linux 6.8.0-49-generic\n", Os(OsFamily.LINUX, "6.8.0-49-generic")),
        ("Darwin 23.5.0\n", Os(OsFamily.MACOS, "23.5.0")),
        ("FreeBSD 14.0-RELEASE\n", Os(OsFamily.OTHER, "FreeBSD 14.0-RELEASE")),
        ("Linux\n", Os(OsFamily.LINUX, None)),
        ("\n", None),
        (None, None),
    ],
)
def test_uname_sr(text: str | None, expected: Os | None) -> None:
    assert parse_uname_sr(text) == expected


@pytest.mark.parametrize(
    ("brand", "variant"),
    [
        ("Apple M1", AppleVariant.M1),
        ("Apple M1 Pro", AppleVariant.M1_PRO),
        ("Apple M1 Max", AppleVariant.M1_MAX),
        ("Apple M1 Ultra", AppleVariant.M1_ULTRA),
        ("Apple M2", AppleVariant.M2),
        ("Apple M2 Pro", AppleVariant.M2_PRO),
        ("Apple M2 Max", AppleVariant.M2_MAX),
        ("Apple M2 Ultra", AppleVariant.M2_ULTRA),
        ("Apple M3", AppleVariant.M3),
        ("Apple M3 Pro", AppleVariant.M3_PRO),
        ("Apple M3 Max", AppleVariant.M3_MAX),
        ("Apple M3 Ultra", AppleVariant.M3_ULTRA),
        ("Apple M4", AppleVariant.M4),
        ("Apple M4 Pro", AppleVariant.M4_PRO),
        ("apple m4 max", AppleVariant.M4_MAX),
        ("Apple processor", AppleVariant.UNKNOWN),
        ("", AppleVariant.UNKNOWN),
        (None, AppleVariant.UNKNOWN),
    ],
)
def test_apple_variant_most_specific_first(brand: str | None, variant: AppleVariant) -> None:
    assert apple_variant(brand) is variant


@pytest.mark.parametrize(
    ("flag", "brand", "machine", "os_family", "expected"),
    [
        ("1\n", "Apple M2 Pro", "arm64", OsFamily.MACOS,
         (CpuKind.APPLE_SILICON, AppleVariant.M2_PRO)),
        # Under Rosetta uname -m says x86_64, but the arm64 flag still says Apple Silicon.
        ("1", "Apple M1", "x86_64", OsFamily.MACOS, (CpuKind.APPLE_SILICON, AppleVariant.M1)),
        ("0", "Intel(R) Core(TM) i7-8700B", "x86_64", OsFamily.MACOS,
         (CpuKind.INTEL_X86_64, None)),
        (None, "Intel(R) Xeon(R)", None, OsFamily.LINUX, (CpuKind.INTEL_X86_64, None)),
        (None, "AMD EPYC", "x86_64", OsFamily.LINUX, (CpuKind.INTEL_X86_64, None)),
        (None, None, "aarch64", OsFamily.LINUX, (CpuKind.ARM64, None)),
        (None, None, "arm64", OsFamily.MACOS, (CpuKind.APPLE_SILICON, AppleVariant.UNKNOWN)),
        (None, None, "riscv64", OsFamily.LINUX, (CpuKind.OTHER, None)),
        (None, None, None, OsFamily.OTHER, (CpuKind.OTHER, None)),
    ],
)  # fmt: skip
def test_classify_cpu(
    flag: str | None,
    brand: str | None,
    machine: str | None,
    os_family: OsFamily,
    expected: tuple[CpuKind, AppleVariant | None],
) -> None:
    assert classify_cpu(arm64_flag=flag, brand=brand, machine=machine, os_family=os_family) == (
        expected
    )


def test_sysctl_values() -> None:
    assert parse_int(fixture("apple-silicon", "sysctl_-n_hw.memsize")) == 17_179_869_184
    assert parse_int(fixture("apple-silicon", "sysctl_-n_hw.ncpu")) == 12
    assert parse_int("") is None
    assert parse_int("twelve") is None
    assert parse_int("-1") is None
    assert parse_int(None) is None


VM_STAT_UPSTREAM = """Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                              123456.
Pages active:                             65000.
Pages inactive:                           45000.
Pages speculative:                         8000.
Pages throttled:                              0.
Pages wired down:                         55000.
Pages purgeable:                           2000.
"Translation faults":                   12345678.
Pages stored in compressor:               18000.
Pages occupied by compressor:              7000.
"""


def test_vm_stat_upstream_case() -> None:
    """Upstream's memory_parse test: 16 GiB, 178456 free-ish pages, 12 % pressure."""
    mem = parse_vm_stat(VM_STAT_UPSTREAM, 17_179_869_184)
    assert mem == Memory(17_179_869_184, (123_456 + 45_000 + 8_000 + 2_000) * 16_384, 12)


def test_vm_stat_page_size_defaults_to_16_kib_and_pressure_rounds_half_up() -> None:
    text = "Pages free: 10.\nPages active: 1.\n"
    assert DEFAULT_PAGE_SIZE == 16384
    assert parse_vm_stat(text, 32768 * 2) == Memory(32768 * 2, 10 * 16384, 25)
    # 1 page of 16 KiB out of 32 pages is 3.125 %; half a percent more rounds up.
    assert parse_vm_stat("Pages wired down: 1.\n", 32 * 16384).pressure_pct == 3
    assert parse_vm_stat("Pages wired down: 1.\n", 8 * 16384).pressure_pct == 13  # 12.5
    assert parse_vm_stat("Pages wired down: 1.\n", None) == Memory(None, 0, None)


def test_vm_stat_missing_gives_unknowns_not_zeros() -> None:
    assert parse_vm_stat(None, 8 * GIB) == Memory(8 * GIB, None, None)
    assert parse_vm_stat("vm_stat: bad output", 8 * GIB) == Memory(8 * GIB, None, None)


def test_meminfo() -> None:
    assert parse_meminfo(fixture("nvidia", "cat__proc_meminfo")) == Memory(
        32_567_948 * 1024, 26_418_876 * 1024, 19
    )
    # Kernels before 3.14 have no MemAvailable.
    assert parse_meminfo("MemTotal: 2048 kB\nMemFree: 1024 kB\n") == Memory(2048 * 1024)
    assert parse_meminfo("") == Memory()
    assert parse_meminfo(None) == Memory()


def test_cpuinfo_and_lscpu() -> None:
    assert parse_cpuinfo(fixture("linux", "cat__proc_cpuinfo")) == CpuFacts("AMD EPYC", 2)
    assert parse_lscpu(fixture("linux", "lscpu")) == CpuFacts("AMD EPYC", 2)
    arm = "processor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\nBogoMIPS\t: 108.00\n"
    assert parse_cpuinfo(arm) == CpuFacts(None, 2)
    assert parse_cpuinfo(None) == CpuFacts()
    assert parse_lscpu("On-line CPU(s) list: 0-3\nNUMA node0 CPU(s): 0-3\n") == CpuFacts()


def test_nvidia_smi() -> None:
    assert parse_nvidia_smi("Tesla T4, 15360, 535.104.05\n\n") == (
        Discrete("Tesla T4", "NVIDIA", 15360 * MIB, "535.104.05"),
    )
    assert parse_nvidia_smi("NVIDIA GH200 480GB, [N/A], 560.35.03\n") == (
        Discrete("NVIDIA GH200 480GB", "NVIDIA", None, "560.35.03"),
    )
    assert parse_nvidia_smi("No devices were found\n") == ()
    assert parse_nvidia_smi(None) == ()


def test_system_profiler_prefers_apple_then_discrete_then_intel() -> None:
    entries = [
        {"sppci_model": "Intel Iris Plus Graphics"},
        {"sppci_model": "NVIDIA GeForce GT 750M", "sppci_vendor": "NVIDIA (0x10de)",
         "sppci_vram": "2048 MB"},
        {"sppci_model": "Apple M1", "sppci_cores": "8"},
        {"_name": "no model: skipped"},
    ]  # fmt: skip
    gpus = parse_system_profiler_displays(json.dumps({"SPDisplaysDataType": entries}))
    assert gpus == (
        AppleIntegrated("Apple M1", 8),
        Discrete("NVIDIA GeForce GT 750M", "NVIDIA", 2048 * MIB),
        IntelIntegrated("Intel Iris Plus Graphics"),
    )


@pytest.mark.parametrize(
    "text", [None, "", "not json", "[]", '{"SPDisplaysDataType": {}}', '{"x": 1}', "null"]
)
def test_system_profiler_garbage_gives_no_gpu(text: str | None) -> None:
    assert parse_system_profiler_displays(text) == ()


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("ollama version is 0.5.7\n", "0.5.7"),
        ("Warning: could not connect to a running Ollama instance\n"
         "Warning: client version is 0.5.7\n", "0.5.7"),
        ("version: 4404 (0827b2c1)\nbuilt with cc 13.2.0 for x86_64-linux-gnu\n", "4404"),
        ("load_backend: loaded CPU backend\nversion: 5120 (abc)\n", "5120"),
        ("0.21.1\n", "0.21.1"),
        ("Python 3.12.8\n", "3.12.8"),
        ("cargo 1.83.0 (5ffbef321 2024-10-29)\n", "1.83.0"),
        ("Homebrew 4.4.15\nHomebrew/homebrew-core (git revision 1a2b)\n", "4.4.15"),
        ("mytool nightly\n", "mytool nightly"),
        ("", "unknown"),
        (None, None),
    ],
)  # fmt: skip
def test_tool_versions(text: str | None, version: str | None) -> None:
    assert parse_tool_version(text) == version


@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    for parse in (parse_sw_vers, parse_uname_sr, parse_cpuinfo, parse_lscpu, parse_meminfo,
                  parse_nvidia_smi, parse_system_profiler_displays, parse_tool_version,
                  parse_int, apple_variant):  # fmt: skip
        parse(text)
    parse_vm_stat(text, 8 * GIB)
    parse_vm_stat(text, 0)


@given(
    total=st.integers(min_value=1, max_value=1 << 40),
    pages=st.lists(st.integers(min_value=0, max_value=1 << 24), min_size=7, max_size=7),
)
def test_vm_stat_formulas_hold(total: int, pages: list[int]) -> None:
    names = ("free", "inactive", "speculative", "purgeable", "wired down", "active")
    lines = [f"Pages {n}: {p}." for n, p in zip(names, pages, strict=False)]
    lines.append(f"Pages occupied by compressor: {pages[6]}.")
    text = "Mach Virtual Memory Statistics: (page size of 4096 bytes)\n" + "\n".join(lines)
    mem = parse_vm_stat(text, total)
    assert mem.available_bytes == sum(pages[:4]) * 4096
    used = sum(pages[4:]) * 4096
    assert mem.pressure_pct is not None
    assert abs(mem.pressure_pct - used * 100 / total) <= 0.5


# -- the recommendation table ----------------------------------------------------------------


def machine(
    os_family: OsFamily = OsFamily.MACOS,
    kind: CpuKind = CpuKind.APPLE_SILICON,
    total: int | None = 16 * GIB,
    gpus: tuple[Gpu, ...] = (),
) -> Machine:
    variant = AppleVariant.M2 if kind is CpuKind.APPLE_SILICON else None
    return Machine(Os(os_family, "1"), Arch(kind, variant), Memory(total), gpus)


def tier(m: Machine) -> tuple[Capability, tuple[str, ...], int]:
    advice = recommend(m)
    return advice.capability, advice.backends, advice.max_params_b


APPLE = ("mlx", "llamacpp", "ollama")
CPU = ("llamacpp", "ollama")
LARGE, MID = Capability.RUNS_LARGE_MODELS, Capability.RUNS_MID_MODELS
SMALL, NONE = Capability.RUNS_SMALL_MODELS_ONLY, Capability.NO_LOCAL_INFERENCE_VIABLE


@pytest.mark.parametrize(
    ("kind", "total", "expected"),
    [
        (CpuKind.APPLE_SILICON, 64 * GIB, (LARGE, APPLE, 13)),
        (CpuKind.APPLE_SILICON, 16 * GIB, (LARGE, APPLE, 13)),
        (CpuKind.APPLE_SILICON, 16 * GIB - 1, (MID, APPLE, 7)),  # floor: 15 GB
        (CpuKind.APPLE_SILICON, 15 * GIB, (MID, APPLE, 7)),
        (CpuKind.APPLE_SILICON, 8 * GIB, (MID, APPLE, 7)),
        (CpuKind.APPLE_SILICON, 8 * GIB - 1, (SMALL, CPU, 3)),
        (CpuKind.APPLE_SILICON, 7 * GIB, (SMALL, CPU, 3)),
        (CpuKind.INTEL_X86_64, 16 * GIB, (MID, CPU, 7)),
        (CpuKind.INTEL_X86_64, 16 * GIB - 1, (SMALL, ("ollama",), 3)),
        (CpuKind.INTEL_X86_64, 8 * GIB, (SMALL, ("ollama",), 3)),
        (CpuKind.OTHER, 64 * GIB, (NONE, (), 0)),
        (CpuKind.ARM64, 64 * GIB, (NONE, (), 0)),
    ],
)
def test_macos_table_is_upstreams(
    kind: CpuKind, total: int, expected: tuple[Capability, tuple[str, ...], int]
) -> None:
    assert tier(machine(OsFamily.MACOS, kind, total)) == expected


def test_unknown_memory_counts_as_zero_and_says_so() -> None:
    advice = recommend(machine(OsFamily.MACOS, CpuKind.APPLE_SILICON, None))
    assert (advice.capability, advice.max_params_b) == (SMALL, 3)
    assert "Total memory unknown: counted as 0 GB." in advice.rationale


def nvidia(mib: int | None) -> Discrete:
    return Discrete("NVIDIA GeForce RTX", "NVIDIA", None if mib is None else mib * MIB, "550")


@pytest.mark.parametrize(
    ("kind", "total", "gpus", "expected"),
    [
        (CpuKind.INTEL_X86_64, 32 * GIB, (), (MID, CPU, 7)),
        (CpuKind.INTEL_X86_64, 16 * GIB, (), (MID, CPU, 7)),
        # MemTotal of a 16 GB box (~15.5 GiB) rounds up to 16, where upstream would floor it.
        (CpuKind.INTEL_X86_64, 16_248_736 * 1024, (), (MID, CPU, 7)),
        (CpuKind.INTEL_X86_64, 15 * GIB, (), (SMALL, CPU, 3)),
        (CpuKind.INTEL_X86_64, 8 * GIB, (), (SMALL, CPU, 3)),
        (CpuKind.ARM64, 16 * GIB, (), (MID, CPU, 7)),
        (CpuKind.ARM64, 4 * GIB, (), (SMALL, CPU, 3)),
        # An RTX 4090 reports 24564 MiB: the nearest GiB is 24, so it lifts to large.
        (CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(24564),), (LARGE, CPU, 13)),
        (CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(23 * 1024),), (MID, CPU, 7)),
        (CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(8188),), (MID, CPU, 7)),
        (CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(7 * 1024),), (SMALL, CPU, 3)),
        (CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(None),), (SMALL, CPU, 3)),
        # The GPU never lowers what RAM alone allows.
        (CpuKind.INTEL_X86_64, 32 * GIB, (nvidia(6 * 1024),), (MID, CPU, 7)),
        # One large card counts; two smaller ones do not add up.
        (CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(12288), nvidia(12288)), (MID, CPU, 7)),
        # A non-NVIDIA discrete GPU does not lift the tier.
        (CpuKind.INTEL_X86_64, 8 * GIB, (Discrete("Radeon", "AMD", 24 * GIB),), (SMALL, CPU, 3)),
        (CpuKind.OTHER, 64 * GIB, (nvidia(24576),), (NONE, (), 0)),
    ],
)
def test_linux_tiers_by_ram_and_nvidia_vram(
    kind: CpuKind,
    total: int,
    gpus: tuple[Gpu, ...],
    expected: tuple[Capability, tuple[str, ...], int],
) -> None:
    assert tier(machine(OsFamily.LINUX, kind, total, gpus)) == expected


def test_linux_rationale_names_the_deliberate_change_and_the_gpu() -> None:
    advice = recommend(machine(OsFamily.LINUX, CpuKind.INTEL_X86_64, 8 * GIB, (nvidia(24564),)))
    assert any("Deliberate change" in line for line in advice.rationale)
    assert any("24 GB VRAM" in line for line in advice.rationale)


@pytest.mark.parametrize("kind", list(CpuKind))
def test_other_os_is_not_viable(kind: CpuKind) -> None:
    advice = recommend(machine(OsFamily.OTHER, kind, 128 * GIB, (nvidia(81920),)))
    assert advice == Recommendation(NONE, (), 0, advice.rationale)
    assert advice.rationale


# -- missing commands and runners --------------------------------------------------------------


def test_nothing_answers_gives_unknowns_and_no_exception(tmp_path: Path) -> None:
    m = probe(FixtureRunner(tmp_path))
    assert m == Machine(Os(OsFamily.OTHER), Arch(CpuKind.OTHER), Memory(), (), Tooling(), ())
    assert recommend(m).capability is NONE


def test_macos_with_every_sysctl_missing() -> None:
    m = probe(DictRunner({"sw_vers": "ProductVersion: 14.5\n", "uname -m": "arm64\n"}))
    assert m.os == Os(OsFamily.MACOS, "14.5", None)
    assert m.arch == Arch(CpuKind.APPLE_SILICON, AppleVariant.UNKNOWN)
    assert m.memory == Memory()
    assert m.gpus == ()
    assert m.source_commands == ("sw_vers", "uname -m")


def test_darwin_by_uname_when_sw_vers_is_missing() -> None:
    m = probe(DictRunner({"uname -sr": "Darwin 23.5.0\n", "sysctl -n hw.optional.arm64": "1"}))
    assert m.os == Os(OsFamily.MACOS, "23.5.0", None)
    assert m.arch.kind is CpuKind.APPLE_SILICON


def test_linux_arm_fills_gaps_from_lscpu() -> None:
    runner = DictRunner({
        "uname -sr": "Linux 6.6.31+rpt-rpi-v8\n",
        "uname -m": "aarch64\n",
        "cat /proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\n",
        "lscpu": "Architecture: aarch64\nCPU(s): 4\nModel name: Cortex-A76\n",
    })  # fmt: skip
    m = probe(runner, tooling=False)
    assert m.arch == Arch(CpuKind.ARM64, None, "Cortex-A76", None, 1)
    assert m.memory == Memory()
    assert "lscpu" in m.source_commands
    assert " ".join(NVIDIA_SMI) in runner.asked
    assert tier(m) == (SMALL, CPU, 3)


def test_windows_like_machine_asks_little_and_is_not_viable() -> None:
    runner = DictRunner({})
    m = probe(runner, tooling=False)
    assert runner.asked == ["sw_vers", "uname -sr", "uname -m"]
    assert m.source_commands == ()
    assert recommend(m).capability is NONE


def test_fixture_stem_is_upstreams() -> None:
    assert fixture_stem(["sysctl", "-n", "hw.model"]) == "sysctl_-n_hw.model"
    assert fixture_stem(["which", "ollama"]) == "which_ollama"
    assert fixture_stem(["cat", "/proc/meminfo"]) == "cat__proc_meminfo"
    assert (
        fixture_stem(NVIDIA_SMI)
        == "nvidia-smi_--query-gpu_name_memory.total_driver_version_--format_csv_noheader_nounits"
    )


def test_fixture_runner_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        FixtureRunner(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError):
        FixtureRunner(tmp_path / "file")


def test_subprocess_runner_answers_none_for_missing_failing_or_slow_commands() -> None:
    runner = SubprocessRunner(timeout_s=0.5)
    assert runner.run(["kei-no-such-command-xyz", "--version"]) is None
    assert runner.run([sys.executable, "-c", "import sys; sys.exit(3)"]) is None
    assert runner.run([sys.executable, "-c", "import time; time.sleep(30)"]) is None
    assert runner.read("/nonexistent/kei/file") is None


def test_subprocess_runner_reads_stdout_else_stderr(tmp_path: Path) -> None:
    runner = SubprocessRunner()
    assert runner.run([sys.executable, "-c", "print('Python 9.9')"]) == "Python 9.9\n"
    # llama.cpp prints its version on stderr.
    on_stderr = "import sys; print('version: 4404 (0827b2c1)', file=sys.stderr)"
    assert parse_tool_version(runner.run([sys.executable, "-c", on_stderr])) == "4404"
    (tmp_path / "f").write_text("MemTotal: 1 kB\n")
    assert runner.read(str(tmp_path / "f")) == "MemTotal: 1 kB\n"


def test_real_probe_of_this_machine_does_not_crash() -> None:
    m = probe(SubprocessRunner())
    json.dumps(m.to_dict())
    advice = recommend(m)
    assert advice.capability in set(Capability)
    if sys.platform.startswith("linux"):
        assert m.os.family is OsFamily.LINUX
        assert m.memory.total_bytes is not None and m.memory.total_bytes > 0
        assert m.arch.cores is not None and m.arch.cores >= 1
        assert m.tooling is not None and m.tooling.python is not None
        assert "cat /proc/meminfo" in m.source_commands
        assert advice.capability is not NONE or m.arch.kind is CpuKind.OTHER


# -- the CLI ---------------------------------------------------------------------------------


def cli(*args: str) -> Result:
    app = typer.Typer()
    app.add_typer(machine_app, name="machine")
    return CliRunner().invoke(app, ["machine", "probe", *args])


def plain(result: Result) -> list[tuple[str, str]]:
    return [tuple(line.split(": ", 1)) for line in result.stdout.splitlines()]  # type: ignore[misc]


def test_cli_plain_lines_on_a_pipe() -> None:
    result = cli("--mock-dir", str(FIXTURES / "nvidia"))
    assert result.exit_code == 0, result.output
    rows = plain(result)
    assert ("os", "Linux 6.8.0-49-generic") in rows
    assert ("cpu", "IntelX86_64, 12th Gen Intel(R) Core(TM) i7-12700K, 20 cores") in rows
    assert [v for k, v in rows if k == "gpu"] == [
        "NVIDIA GeForce RTX 4090 (NVIDIA, 24.0 GiB VRAM, driver 550.120)",
        "NVIDIA GeForce RTX 3060 (NVIDIA, 12.0 GiB VRAM, driver 550.120)",
    ]
    assert ("ollama", "0.5.7") in rows
    assert ("cargo", "not found") in rows
    assert ("capability", "RunsLargeModels") in rows
    assert ("backends", "llamacpp, ollama") in rows
    assert ("max params", "13B") in rows
    assert sum(1 for k, _ in rows if k == "rationale") == 3


def test_cli_plain_apple_silicon_and_no_tooling() -> None:
    rows = plain(cli("--mock-dir", str(FIXTURES / "apple-silicon"), "--no-tooling"))
    assert ("os", "Macos 14.5 (23F79)") in rows
    assert ("cpu", "AppleSilicon M2Pro, Apple M2 Pro, Mac14,9, 12 cores") in rows
    assert ("memory", "16.0 GiB total, 4.6 GiB available, 63% pressure") in rows
    assert ("gpu", "Apple M2 Pro (19 GPU cores)") in rows
    assert ("tooling", "not probed (--no-tooling)") in rows
    assert ("backends", "mlx, llamacpp, ollama") in rows


@pytest.mark.parametrize("platform", ["linux", "nvidia", "macos-intel", "apple-silicon"])
def test_cli_json_is_one_object_with_machine_and_recommendation(platform: str) -> None:
    result = cli("--json", "--mock-dir", str(FIXTURES / platform))
    assert result.exit_code == 0, result.output  # 0 on Linux too, unlike upstream's 2
    assert len(result.stdout.splitlines()) == 1
    data = json.loads(result.stdout)
    expected = probe(FixtureRunner(FIXTURES / platform))
    assert data == {
        "machine": expected.to_dict(),
        "recommendation": recommend(expected).to_dict(),
    }
    assert set(data["machine"]) == {"os", "arch", "memory", "gpus", "tooling", "source_commands"}
    assert set(data["recommendation"]) == {"capability", "backends", "max_params_b", "rationale"}


def test_cli_json_field_shapes() -> None:
    data = json.loads(cli("--json", "--mock-dir", str(FIXTURES / "macos-intel")).stdout)
    m = data["machine"]
    assert m["os"] == {"family": "Macos", "version": "13.6.9", "build": "22G830"}
    assert m["arch"]["family"] == {"kind": "IntelX86_64"}
    assert m["memory"] == {
        "total_bytes": 16 * GIB, "available_bytes": 6_187_290_624, "pressure_pct": 60,
    }  # fmt: skip
    assert m["gpus"] == [
        {"kind": "Discrete", "name": "AMD Radeon Pro 5500M", "vendor": "AMD",
         "vram_bytes": 4 * GIB, "driver": None},
        {"kind": "IntelIntegrated", "name": "Intel UHD Graphics 630"},
    ]  # fmt: skip
    assert m["tooling"] == {"ollama": "0.5.7", "llama_cpp": None, "mlx_lm": None,
                            "python": "3.9.6", "cargo": None, "homebrew": "4.4.15"}  # fmt: skip
    assert data["recommendation"]["capability"] == "RunsMidModels"
    apple_dir = str(FIXTURES / "apple-silicon")
    apple = json.loads(cli("--json", "--no-tooling", "--mock-dir", apple_dir).stdout)
    assert apple["machine"]["arch"]["family"] == {"kind": "AppleSilicon", "variant": "M2Pro"}
    assert apple["machine"]["tooling"] is None


def test_cli_rich_table_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_cmd, "is_tty", lambda: True)
    result = cli("--mock-dir", str(FIXTURES / "linux"))
    assert result.exit_code == 0, result.output
    assert "capability" in result.stdout
    assert "RunsMidModels" in result.stdout
    assert "capability: " not in result.stdout


def test_cli_bad_mock_dir_is_one_line_error(tmp_path: Path) -> None:
    result = cli("--mock-dir", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "kei: error: --mock-dir" in result.stderr
    assert "Traceback" not in result.output


def test_cli_empty_mock_dir_still_reports(tmp_path: Path) -> None:
    result = cli("--json", "--mock-dir", str(tmp_path))
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["machine"]["os"] == {"family": "Other", "version": None, "build": None}
    assert data["recommendation"]["capability"] == "NoLocalInferenceViable"


def test_cli_real_probe_exits_0() -> None:
    result = cli("--json")
    assert result.exit_code == 0, result.output
    assert "recommendation" in json.loads(result.stdout)
