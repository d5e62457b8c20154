"""``kei machine probe``: this machine's hardware and tooling, and the local models it can run
(upstream kei-machine-probe).

Thin: probe (``adapters/machine/probe.py``), recommend (``kei.domain.machine.recommend``),
render. ``--json`` prints one object, ``{"machine": ..., "recommendation": ...}``. The exit
code is 0 on every OS: upstream exits 2 when the OS is not macOS, which would make every
probe on Linux, where kei runs, look like a failure. A machine that cannot run models says
so in ``capability``, not in the exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kei.adapters.cli.context import answering, command_group, is_tty
from kei.adapters.cli.options import JsonObject
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.domain.machine.facts import Gpu, Machine
    from kei.domain.machine.recommend import Recommendation

machine_app, register = command_group(
    "machine", "This machine: hardware, tooling, and the local models it can run."
)

MockDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--mock-dir", help="Replay captured <command>.stdout files from DIR.", metavar="DIR"
    ),
]
NoToolingOpt = Annotated[
    bool, typer.Option("--no-tooling", help="Skip looking for ollama, llama.cpp, etc.")
]


@machine_app.command("probe")
def probe_machine(
    ctx: typer.Context,
    as_json: JsonObject = False,
    mock_dir: MockDirOpt = None,
    no_tooling: NoToolingOpt = False,
) -> None:
    """OS, CPU, memory, GPUs and local-LLM tooling, and which models fit (exit 0 on any OS)."""
    from kei.adapters.machine.probe import FixtureRunner, Runner, SubprocessRunner, probe
    from kei.domain.machine.recommend import recommend

    with answering(ctx):
        runner: Runner = SubprocessRunner() if mock_dir is None else FixtureRunner(mock_dir)
        machine = probe(runner, tooling=not no_tooling)
        advice = recommend(machine)
        if as_json:
            json_line({"machine": machine.to_dict(), "recommendation": advice.to_dict()})
        else:
            _show(_rows(machine, advice))


def _rows(machine: Machine, advice: Recommendation) -> list[tuple[str, str]]:
    """The report as (field, value) pairs; a field may repeat (gpu, rationale)."""
    os_, arch, mem = machine.os, machine.arch, machine.memory
    build = f" ({os_.build})" if os_.build else ""
    cpu = [arch.label, arch.brand, arch.model_id,
           None if arch.cores is None else f"{arch.cores} cores"]  # fmt: skip
    rows = [
        ("os", f"{os_.family.value} {os_.version or 'unknown version'}{build}"),
        ("cpu", ", ".join(part for part in cpu if part)),
        ("memory", _memory(mem.total_bytes, mem.available_bytes, mem.pressure_pct)),
    ]
    rows += [("gpu", _gpu(g)) for g in machine.gpus] or [("gpu", "none found")]
    if machine.tooling is None:
        rows.append(("tooling", "not probed (--no-tooling)"))
    else:
        tools = machine.tooling.as_dict().items()
        rows += [(name, version or "not found") for name, version in tools]
    rows += [
        ("capability", advice.capability.value),
        ("backends", ", ".join(advice.backends) or "none"),
        ("max params", f"{advice.max_params_b}B"),
    ]
    return rows + [("rationale", line) for line in advice.rationale]


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def _memory(total: int | None, available: int | None, pressure: int | None) -> str:
    parts = [f"{_gib(total)} total" if total is not None else "total unknown"]
    if available is not None:
        parts.append(f"{_gib(available)} available")
    if pressure is not None:
        parts.append(f"{pressure}% pressure")
    return ", ".join(parts)


def _gpu(gpu: Gpu) -> str:
    from kei.domain.machine.facts import AppleIntegrated, Discrete

    if isinstance(gpu, AppleIntegrated):
        return gpu.name + ("" if gpu.cores is None else f" ({gpu.cores} GPU cores)")
    if isinstance(gpu, Discrete):
        extra = [gpu.vendor, None if gpu.vram_bytes is None else f"{_gib(gpu.vram_bytes)} VRAM",
                 None if gpu.driver is None else f"driver {gpu.driver}"]  # fmt: skip
        details = ", ".join(e for e in extra if e)
        return f"{gpu.name} ({details})" if details else gpu.name
    return f"{gpu.name} (integrated)"


def _show(rows: Sequence[tuple[str, str]]) -> None:
    """A rich table on a terminal; ``field: value`` lines when piped."""
    if is_tty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table("field", "value")
        for field, value in rows:
            table.add_row(Text(field), Text(value))
        Console().print(table)
        return
    for field, value in rows:
        sys.stdout.write(f"{field}: {value}\n")
    sys.stdout.flush()
