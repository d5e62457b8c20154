"""``kei llm backends|route|chat``: kei's local LLM backends (upstream kei-llm-router).

Thin: health in ``kei.adapters.llm.health``, routing in ``kei.adapters.llm.router``, one
recorded call in ``kei.app.llm``. Habits:

- ``backends`` and ``route`` only ask; ``chat`` is the one command that writes: every
  call appends its route decision and outcome (and an agent's cost) to the ledger.
- ``chat`` streams the answer to stdout as it arrives and prints a one-line summary to
  stderr; ``--json`` prints one JSON object at the end instead.
- Where the backends listen: ``KEI_OLLAMA_URL`` (default http://127.0.0.1:11434) and
  ``KEI_LLAMA_SERVER_URL`` (default http://127.0.0.1:8080). Which backends are viable
  comes from the machine probe, or from ``KEI_LLM_BACKENDS`` (comma-separated kinds,
  ``none`` for no local inference) when set.
- Exit codes: upstream's where they apply (``exits.LLM_EXITS``), else kei's table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from msgspec import Struct

from kei.adapters.cli.context import (
    answering,
    command_group,
    globals_of,
    open_ledger,
    seal_key,
    stderr,
)
from kei.adapters.cli.exits import LLM_EXITS
from kei.adapters.cli.options import BudgetMicro, JsonLines, JsonObject, SpeedOpt, option_group
from kei.adapters.cli.output import json_line

if TYPE_CHECKING:
    from kei.adapters.llm.protocol import LlmBackend, Timeouts
    from kei.adapters.llm.router import Capacity, RouteDecision
    from kei.app.llm import CallResult, LlmService
    from kei.domain.catalog.catalog import Catalog

llm_app, register = command_group(
    "llm", "Local LLM backends: health, routing, recorded chat calls."
)

BACKENDS_ENV: Final = "KEI_LLM_BACKENDS"
ModelOpt = Annotated[
    str, typer.Option("--model", metavar="MODEL", help="Model id, alias or backend tag.")
]
RequireLocal = Annotated[
    bool, typer.Option("--require-local", help="Fail (exit 2) when no local backend can run.")
]
RoleOpt = Annotated[
    str | None,
    typer.Option("--role", metavar="ROLE", help="Fallback models must carry this role tag."),
]
routing_options: Final = option_group(
    "routing",
    {"require_local": RequireLocal, "role": RoleOpt, "budget_micro": BudgetMicro},
    dict,
    {"require_local": False},
)
"""What limits the route, as ``decide`` and ``CallRequest`` take it: one ``routing`` dict."""
PromptArg = Annotated[str, typer.Argument(metavar="PROMPT", help="The user message.")]
SystemOpt = Annotated[
    str | None, typer.Option("--system", metavar="TEXT", help="A system message.")
]
AgentOpt = Annotated[
    str | None, typer.Option("--agent", metavar="ID", help="Record the call's cost for this agent.")
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", metavar="SECONDS", min=0.1, help="Seconds to wait for each piece of answer."
    ),
]
StartServerOpt = Annotated[
    bool,
    typer.Option("--start-server", help="Start llama-server on the GGUF file if none runs."),
]

# -- the commands ---------------------------------------------------------------------


@llm_app.command("backends")
def backends(ctx: typer.Context, as_json: JsonLines = False) -> None:
    """Which local backends are up (MLX, llama.cpp, Ollama), and what this machine can run."""
    from kei.adapters.llm.health import Endpoints, check_all

    with answering(ctx, table=LLM_EXITS):
        env = os.environ
        capacity = capacity_of(env)
        for h in check_all(env, Endpoints.from_env(env)):
            viable = h.backend_kind in capacity.backends
            if as_json:
                json_line({"backend_kind": h.backend_kind, "available": h.available,
                           "viable": viable, "reason": h.reason})  # fmt: skip
            else:
                mark = "up" if h.available else "down"
                note = "" if viable else " (not viable on this machine)"
                _say(f"{h.backend_kind:<9} {mark:<5} {h.reason}{note}")
        if not as_json:
            stderr().print(f"machine: {capacity.capability}; viable: "
                           f"{', '.join(capacity.backends) or 'none'}", markup=False)  # fmt: skip


@llm_app.command("route")
@routing_options
def route(
    ctx: typer.Context,
    model: ModelOpt,
    *,
    routing: dict[str, Any],
    as_json: JsonObject = False,
) -> None:
    """The backend that would serve a model (or its first servable fallback), and why."""
    from kei.adapters.llm.router import decide
    from kei.app.llm import inventories_of

    with answering(ctx, table=LLM_EXITS), _parts(ctx) as p:
        inventories = inventories_of(p.clients, p.capacity)
        decision = decide(model, inventories, p.capacity, catalog=p.catalog, **routing)
        if as_json:
            json_line(decision_json(decision))
        else:
            _say(f"{decision.backend} {decision.model} "
                 f"({'exact' if decision.exact else 'fuzzy'} match for {decision.matched_model})")  # fmt: skip
            for line in decision.rationale:
                _say(f"  - {line}")


@llm_app.command("chat")
@routing_options
def chat(
    ctx: typer.Context,
    model: ModelOpt,
    prompt: PromptArg,
    system: SystemOpt = None,
    agent: AgentOpt = None,
    speed: SpeedOpt = None,
    *,
    routing: dict[str, Any],
    timeout: TimeoutOpt = 120.0,
    start_server: StartServerOpt = False,
    as_json: JsonObject = False,
) -> None:
    """Send one chat message through the routed backend; the call is recorded in the ledger
    (--speed fast: priced at the entry's fast-mode rates, as `kei cost record --speed`)."""
    from kei.adapters.llm.protocol import Chunk, Message
    from kei.app.llm import CallRequest

    messages = ([Message("system", system)] if system is not None else []) + [
        Message("user", prompt)
    ]
    request = CallRequest(model, tuple(messages), agent_id=agent, speed=speed, **routing)

    shown: list[str] = []

    def show(chunk: Chunk) -> None:
        shown.append(chunk.text)
        sys.stdout.write(chunk.text)
        sys.stdout.flush()

    with (
        answering(ctx, table=LLM_EXITS),
        _service(ctx, timeout, start_server=start_server) as service,
    ):
        try:
            result = service.chat(request, on_chunk=None if as_json else show)
        finally:
            if shown:  # end the streamed answer's line, even when the call failed
                sys.stdout.write("\n")
                sys.stdout.flush()
        if as_json:
            json_line(result_json(result))
        else:
            _summary(result)
        if result.cost_event is not None:  # a cost for an agent: its budgets, once it is in
            from kei.adapters.cli.budget_lines import after_costs, say

            say(
                after_costs(
                    globals_of(ctx).settings(), service.ledger, added=result.micro_cents or 0
                )
            )


# -- assembling the service ---------------------------------------------------------------


def capacity_of(env: Mapping[str, str]) -> Capacity:
    """The viable backends: ``KEI_LLM_BACKENDS`` when set, else the machine probe's advice."""
    from kei.adapters.llm.protocol import BACKEND_KINDS
    from kei.adapters.llm.router import Capacity
    from kei.errors import PlatformError

    forced = env.get(BACKENDS_ENV)
    if forced is not None:
        kinds = tuple(k.strip() for k in forced.split(",") if k.strip() and k.strip() != "none")
        unknown = [k for k in kinds if k not in BACKEND_KINDS]
        if unknown:
            from kei.errors import InputError

            raise InputError(f"{BACKENDS_ENV}: unknown backend {unknown[0]!r}; expected "
                             f"{', '.join(BACKEND_KINDS)} or none")  # fmt: skip
        why = f"backends set by {BACKENDS_ENV}"
        return Capacity("Overridden" if kinds else "NoLocalInferenceViable", kinds, (why,))
    try:
        from kei.adapters.machine.probe import SubprocessRunner, probe
        from kei.domain.machine.recommend import recommend

        advice = recommend(probe(SubprocessRunner(), tooling=False))
    except (OSError, ValueError) as exc:
        raise PlatformError(f"machine probe failed: {exc}") from None
    return Capacity(advice.capability.value, tuple(advice.backends), tuple(advice.rationale))


def _backends(
    env: Mapping[str, str], timeouts: Timeouts, *, start_server: bool = False
) -> dict[str, LlmBackend]:
    from kei.adapters.llm.health import Endpoints
    from kei.adapters.llm.llama_server import LlamaServerBackend
    from kei.adapters.llm.llamacpp import LlamaCppBackend
    from kei.adapters.llm.mlx import MlxBackend
    from kei.adapters.llm.ollama import OllamaBackend

    urls = Endpoints.from_env(env)
    return {
        "mlx": MlxBackend(env, timeouts=timeouts),
        "llamacpp": LlamaCppBackend(
            LlamaServerBackend(urls.llama_server, timeouts), env, start=start_server
        ),
        "ollama": OllamaBackend(urls.ollama, timeouts),
    }


class _Parts(Struct):
    """What routing and calls need: the catalog, the capacity, the backend clients."""

    catalog: Catalog
    capacity: Capacity
    clients: dict[str, LlmBackend]


@contextmanager
def _parts(
    ctx: typer.Context, read_s: float = 120.0, *, start_server: bool = False
) -> Iterator[_Parts]:
    from kei.adapters.files.catalog import load_catalog
    from kei.adapters.llm.protocol import Timeouts

    env = dict(os.environ)
    catalog = load_catalog(globals_of(ctx).settings().home)
    capacity = capacity_of(env)
    timeouts = Timeouts(connect_s=min(2.0, read_s), read_s=read_s)
    clients = _backends(env, timeouts, start_server=start_server)
    try:
        yield _Parts(catalog, capacity, clients)
    finally:
        for client in clients.values():
            close = getattr(client, "close", None)
            if close is not None:
                close()


@contextmanager
def _service(ctx: typer.Context, read_s: float, *, start_server: bool) -> Iterator[LlmService]:
    from kei.app.llm import LlmService

    settings = globals_of(ctx).settings()
    with (
        _parts(ctx, read_s, start_server=start_server) as p,
        open_ledger(settings, with_key=True) as ledger,
    ):
        yield LlmService(
            ledger,
            p.catalog,
            p.clients,
            p.capacity,
            seal_key=seal_key(settings),
        )


# -- output -------------------------------------------------------------------------------


def _backend_json(d: RouteDecision) -> dict[str, Any]:
    """Upstream's ``Backend``, tagged by ``kind``."""
    if d.backend == "ollama":
        return {"kind": "ollama", "model_tag": d.model}
    if d.backend == "llamacpp":
        return {"kind": "llamacpp", "gguf_path": d.model, "model_name": d.model}
    return {"kind": d.backend, "model_id": d.model}


def decision_json(d: RouteDecision) -> dict[str, Any]:
    """Upstream's ``RouteDecision`` fields, plus what kei adds (match, fallback, tried)."""
    out: dict[str, Any] = {
        "backend": _backend_json(d),
        "machine_tier": d.capability,
        "rationale": list(d.rationale),
        "requested_model": d.requested_model,
        "model": d.model,
        "exact": d.exact,
        "matched_model": d.matched_model,
        "via_fallback": d.via_fallback,
        "tried": list(d.tried),
    }
    if d.catalog_model is not None:
        p = d.catalog_model.pricing
        out["model_pricing"] = {"input_per_mtok_micro": p.input_per_mtok_micro,
                                "output_per_mtok_micro": p.output_per_mtok_micro,
                                "status": p.status}  # fmt: skip
    return out


def result_json(r: CallResult) -> dict[str, Any]:
    c, u = r.completion, r.completion.usage
    return {
        "call_id": r.call_id,
        **decision_json(r.decision),
        "text": c.text,
        "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens},
        "total_us": c.total_us,
        "load_us": c.load_us,
        "prompt_us": c.prompt_us,
        "generation_us": c.generation_us,
        "finish_reason": c.finish_reason,
        "micro_cents": r.micro_cents,
        "speed": r.speed,
        "speed_unpriced": r.speed_unpriced,
        "events": list(r.events),
        "cost_event": r.cost_event,
        "notes": list(r.notes),
    }


def _summary(r: CallResult) -> None:
    u = r.completion.usage
    price = "unpriced" if r.micro_cents is None else f"{r.micro_cents} µ¢"
    tokens = f"{_n(u.input_tokens)} in / {_n(u.output_tokens)} out"
    line = (f"kei: {r.decision.backend} {r.decision.model}: {tokens}, {price}, "
            f"call {r.call_id}")  # fmt: skip
    if r.cost_event:
        line += f", cost {r.cost_event}"
    console = stderr()
    console.print(line, markup=False)
    for note in r.notes:
        console.print(f"kei: note: {note}", markup=False)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
