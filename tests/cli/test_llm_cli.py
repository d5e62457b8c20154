"""``kei llm backends|route|chat`` end to end: real protocol servers on 127.0.0.1, a real
ledger made by ``kei init`` (SQLite, and PostgreSQL when configured), and the events each
call appends: the route decision, the completed or failed call with its error, and an
agent's cost. Exit codes are upstream kei-llm-router's (spec §7).

Commands run in-process (``CliRunner``) on an app holding the commands they need, so the
tests do not depend on ``llm`` being registered in ``kei.adapters.cli.app``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from cli_helpers import cli_env
from kei.adapters.cli.app import main_options
from kei.adapters.cli.commands import agent_cmd, init_cmd, llm_cmd
from kei.adapters.files.catalog import load_catalog
from kei.adapters.files.keyfile import load_key
from kei.adapters.llm.ollama import OllamaBackend
from kei.adapters.llm.protocol import Chunk, Message, Timeouts
from kei.adapters.llm.router import Capacity
from kei.app.budgets.writes import set_budget
from kei.app.ledger.ledger import Ledger
from kei.app.llm import CallRequest, LlmService, price_call
from kei.domain.events.payload import TokenUsage
from llm_servers import Behaviour, OllamaServer, closed_port_url, fake_llama_server, free_port

Kei = Callable[..., Result]


def make_app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.callback()(main_options)
    init_cmd.register(app)
    agent_cmd.register(app)
    llm_cmd.register(app)
    return app


APP = make_app()


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server


@pytest.fixture
def env(store_url: str, tmp_path: Path, ollama: OllamaServer) -> dict[str, str]:
    (tmp_path / "gguf").mkdir()
    return cli_env(
        tmp_path / "home",
        store_url,
        KEI_OLLAMA_URL=ollama.url,
        KEI_LLAMA_SERVER_URL=closed_port_url(),
        KEI_LLM_BACKENDS="llamacpp,ollama",
        KEI_GGUF_DIRS=str(tmp_path / "gguf"),
    )


@pytest.fixture
def kei(env: dict[str, str]) -> Kei:
    def run(*args: str, code: int | None = 0, **extra: str) -> Result:
        result = CliRunner().invoke(APP, list(args), env={**env, **extra})
        if code is not None:
            assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    run("init")
    run("agent", "fork", "a1", "agent/a1")
    return run


def llm_events(url: str) -> list[dict[str, Any]]:
    with Ledger.open(url) as ledger:
        return [{"type": e.type, "stream": e.stream, "version": e.version, **e.payload_data()}
                for e in ledger.read() if e.stream.startswith(("llm/", "agent/"))
                and e.type != "agent.forked"]  # fmt: skip


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("kei: error: ")
    assert all(line.startswith("kei: ") for line in lines)
    assert "Traceback" not in result.stderr
    return lines[0]


# -- backends and route ---------------------------------------------------------------------


def test_backends_json_in_upstream_order(kei: Kei) -> None:
    rows = [json.loads(line) for line in kei("llm", "backends", "--json").stdout.splitlines()]
    assert [(r["backend_kind"], r["available"], r["viable"]) for r in rows] == [
        ("mlx", False, False), ("llamacpp", False, True), ("ollama", True, True)]  # fmt: skip
    text = kei("llm", "backends")
    assert "ollama    up" in text.stdout
    assert "viable: llamacpp, ollama" in text.stderr


def test_route_json_fuzzy_match_with_catalog_pricing(kei: Kei, store_url: str) -> None:
    out = json.loads(kei("llm", "route", "--model", "llama-3-70b-local", "--json").stdout)
    assert out["backend"] == {"kind": "ollama", "model_tag": "llama3:70b"}
    assert out["machine_tier"] == "Overridden"
    assert out["exact"] is False and out["via_fallback"] is False
    assert out["rationale"][0] == "first viable backend `ollama` matched `llama3:70b` (fuzzy)"
    assert out["model_pricing"]["status"] == "verified"
    assert llm_events(store_url) == []  # route only asks


def test_route_walks_the_fallback_chain(kei: Kei) -> None:
    out = json.loads(kei("llm", "route", "--model", "opus", "--require-local", "--json").stdout)
    assert out["matched_model"] == "llama-3-70b-local" and out["via_fallback"] is True
    assert out["tried"][0] == "llamacpp:opus" and out["tried"][-1] == "ollama:llama-3-70b-local"


def test_route_exit_codes(kei: Kei) -> None:
    none = kei("llm", "route", "--model", "gpt-5", code=2)
    assert "no local backend serves 'gpt-5'" in one_error_line(none)
    viable = kei("llm", "route", "--model", "x", "--require-local", code=2, KEI_LLM_BACKENDS="none")
    assert "no compatible local backend" in one_error_line(viable)
    bad = kei("llm", "route", "--model", "x", code=2, KEI_LLM_BACKENDS="cuda")
    assert "unknown backend 'cuda'" in one_error_line(bad)


# -- chat -------------------------------------------------------------------------------------


def test_chat_streams_and_records_route_call_and_cost(
    kei: Kei, store_url: str, ollama: OllamaServer
) -> None:
    result = kei("llm", "chat", "--model", "llama-3-70b-local", "--agent", "a1",
                 "--system", "be brief", "hi there")  # fmt: skip
    assert result.stdout == "Hello world\n"
    assert "ollama llama3:70b: 12 in / 3 out, 0 µ¢" in result.stderr
    body = ollama.requests[-1][2]
    assert body["messages"] == [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hi there"}]  # fmt: skip
    decided, completed, cost = llm_events(store_url)
    call = decided["call_id"]
    assert decided["stream"] == completed["stream"] == f"llm/{call}"
    assert (decided["version"], completed["version"]) == (1, 2)
    assert decided["type"] == "llm.route.decided"
    assert (decided["requested_model"], decided["backend"], decided["model"]) == (
        "llama-3-70b-local", "ollama", "llama3:70b")  # fmt: skip
    assert decided["exact"] is False and decided["capability"] == "Overridden"
    assert completed["type"] == "llm.call.completed"
    assert completed["ok"] is True and completed["call_id"] == call
    usage = {k: v for k, v in completed["usage"].items() if v is not None}
    assert usage == {"input_tokens": 12, "output_tokens": 3}
    assert (completed["total_us"], completed["load_us"], completed["prompt_us"],
            completed["generation_us"]) == (5_123_456, 1_000, 250_000, 4_000_000)  # fmt: skip
    assert completed["finish_reason"] == "stop" and completed["agent_id"] == "a1"
    assert completed["micro_cents"] == 0
    assert completed["price_entry_id"] == "llama-3-70b-local"
    assert cost["type"] == "cost.recorded" and cost["stream"] == "agent/a1"
    assert (cost["agent_id"], cost["provider"], cost["model"], cost["micro_cents"]) == (
        "a1", "local", "llama-3-70b-local", 0)  # fmt: skip
    assert cost["price_entry_hash"] == completed["price_entry_hash"]
    with Ledger.open(store_url) as ledger:
        assert ledger.verify().ok


def test_chat_json_is_one_object(kei: Kei, store_url: str) -> None:
    out = json.loads(kei("llm", "chat", "--model", "llama3:8b", "hi", "--json").stdout)
    assert out["text"] == "Hello world" and out["exact"] is True
    assert out["micro_cents"] is None  # llama3:8b is not in the catalog: unpriced, not free
    assert out["events"] == [f"llm/{out['call_id']}:1", f"llm/{out['call_id']}:2"]
    _, completed = llm_events(store_url)
    assert completed["micro_cents"] is None and completed.get("price_entry_id") is None


def test_an_unpriced_call_for_an_agent_records_an_unpriced_cost(kei: Kei, store_url: str) -> None:
    result = kei("llm", "chat", "--model", "llama3:8b", "--agent", "a1", "hi")
    assert "cost for agent a1 recorded as unpriced" in result.stderr
    assert "no token price for 'llama3:8b'" in result.stderr
    events = llm_events(store_url)
    assert [e["type"] for e in events] == ["llm.route.decided", "llm.call.completed",
                                           "cost.recorded"]  # fmt: skip
    cost = events[-1]
    assert (cost["agent_id"], cost["model"], cost["micro_cents"], cost["unpriced"]) == (
        "a1", "llama3:8b", 0, True)  # fmt: skip
    assert cost.get("price_entry_id") is None


def test_a_priced_call_for_an_agent_checks_its_budgets(
    kei: Kei, store_url: str, tmp_path: Path
) -> None:
    """A local model the user priced: the call's cost crosses the agent's budget, said once."""
    (tmp_path / "home" / "models.toml").write_text(
        '[[models]]\nid = "llama-3-70b-local"\n\n[models.pricing]\n'
        "input_per_mtok_micro = 10000000000000\noutput_per_mtok_micro = 10000000000000\n"
        'status = "needs-verification"\n'
    )  # 12 in and 3 out tokens: $1.50
    key = load_key(tmp_path / "home" / "keys" / "default.key")
    with Ledger.open(store_url, key=key) as ledger:
        set_budget(ledger, "tree:a1", "total", 100_000_000)  # $1
    result = kei("llm", "chat", "--model", "llama-3-70b-local", "--agent", "a1", "hi")
    assert result.stderr.count("kei: budget tree:a1 crossed") == 3
    with Ledger.open(store_url) as ledger:
        crossed = [e.stream for e in ledger.read() if e.type == "budget.threshold.crossed"]
    assert crossed == ["budget/1/total"] * 3


@pytest.mark.parametrize(
    ("behaviour", "code", "message"),
    [
        (
            Behaviour(mode="500", paths=("/api/chat",)),
            1,
            "answered HTTP 500: llama runner process has terminated",
        ),
        (Behaviour(mode="drop"), 1, "connection dropped before the answer was complete"),
        (Behaviour(mode="hang", paths=("/api/chat",)), 1, "no answer within 0.5 s"),
        (Behaviour(mode="error-line"), 1, "failed: an error was encountered"),
        (Behaviour(mode="404", paths=("/api/chat",)), 3, "has no model 'llama3:8b'"),
    ],
    ids=["500", "dropped-mid-stream", "never-answers", "error-in-stream", "404"],
)
def test_a_failed_call_is_recorded_then_reported(
    kei: Kei, store_url: str, ollama: OllamaServer, behaviour: Behaviour, code: int, message: str
) -> None:
    ollama.behaviour.mode, ollama.behaviour.paths = behaviour.mode, behaviour.paths
    result = kei("llm", "chat", "--model", "llama3:8b", "--agent", "a1", "--timeout", "0.5",
                 "hi", code=code)  # fmt: skip
    assert message in one_error_line(result)
    decided, failed = llm_events(store_url)  # and no cost
    assert decided["type"] == "llm.route.decided" and decided["model"] == "llama3:8b"
    assert failed["type"] == "llm.call.completed" and failed["ok"] is False
    assert message in failed["error"] and "\n" not in failed["error"]
    assert failed["backend"] == "ollama" and failed["agent_id"] == "a1"
    assert failed.get("micro_cents") is None
    if behaviour.mode == "drop":
        assert result.stdout == "Hel\n"  # what arrived was shown


def test_a_call_nothing_can_serve_is_recorded_as_failed(kei: Kei, store_url: str) -> None:
    result = kei("llm", "chat", "--model", "gpt-5", "hi", code=2)
    assert "no local backend serves 'gpt-5'" in one_error_line(result)
    assert result.stdout == ""
    (failed,) = llm_events(store_url)
    assert failed["type"] == "llm.call.completed" and failed["ok"] is False
    assert (failed["backend"], failed["model"]) == ("<none>", "gpt-5")


def test_an_unreachable_backend_is_exit_1_and_recorded(kei: Kei, store_url: str) -> None:
    # route from the listing, then the server goes away before the call
    result = kei("llm", "chat", "--model", "llama3:8b", "hi", code=2,
                 KEI_OLLAMA_URL=closed_port_url())  # fmt: skip
    line = one_error_line(result)
    assert "no local backend serves 'llama3:8b'" in line
    assert "nothing answers" in result.stderr  # the hint says why ollama listed nothing
    assert llm_events(store_url)[0]["ok"] is False


def test_an_unknown_agent_costs_no_model_call(
    kei: Kei, store_url: str, ollama: OllamaServer
) -> None:
    before = len(ollama.requests)
    result = kei("llm", "chat", "--model", "llama3:8b", "--agent", "ghost", "hi", code=2)
    assert "no agent with id ghost" in one_error_line(result)
    assert len(ollama.requests) == before
    assert llm_events(store_url) == []


# -- the service, without the CLI --------------------------------------------------------------


@pytest.fixture
def service_parts(
    ledger: Ledger, ollama: OllamaServer
) -> Iterator[tuple[LlmService, OllamaBackend]]:
    catalog = load_catalog(None)
    with OllamaBackend(ollama.url, Timeouts(0.5, 0.5)) as client:
        capacity = Capacity("RunsMidModels", ("ollama",), ("test",))
        yield LlmService(ledger, catalog, {"ollama": client}, capacity), client


def test_an_interrupted_stream_is_recorded_then_raised(
    service_parts: tuple[LlmService, OllamaBackend], ledger: Ledger
) -> None:
    service, _ = service_parts

    def stop(chunk: Chunk) -> None:
        raise KeyboardInterrupt

    request = CallRequest("llama3:8b", (Message("user", "hi"),))
    with pytest.raises(KeyboardInterrupt):
        service.chat(request, on_chunk=stop)
    failed = [e.payload_data() for e in ledger.read() if e.type == "llm.call.completed"]
    assert failed == [failed[0]] and failed[0]["ok"] is False
    assert failed[0]["error"] == "interrupted before the answer ended"
    # the backend is still usable afterwards
    assert service.chat(request).completion.text == "Hello world"


def test_the_service_walks_to_a_fallback_and_prices_it(
    service_parts: tuple[LlmService, OllamaBackend], ledger: Ledger
) -> None:
    service, _ = service_parts
    result = service.chat(CallRequest("sonnet", (Message("user", "hi"),)))
    assert result.decision.matched_model == "llama-3-70b-local"
    assert (result.decision.model, result.micro_cents) == ("llama3:70b", 0)
    decided = next(e.payload_data() for e in ledger.read() if e.type == "llm.route.decided")
    assert decided["requested_model"] == "sonnet"
    assert decided["tried"][-1] == "ollama:llama-3-70b-local"
    assert len(decided["tried"]) == len(load_catalog(None).chain("sonnet").models)


def test_price_call_never_prices_an_unknown_count_as_zero_tokens() -> None:
    catalog = load_catalog(None)
    free, paid = catalog.get("llama-3-70b-local"), catalog.get("gpt-4o-mini")
    unknown_in = TokenUsage(input_tokens=None, output_tokens=10)
    assert price_call(catalog, free, unknown_in) == 0  # a 0 rate prices any count at 0
    assert price_call(catalog, paid, unknown_in) is None
    assert price_call(catalog, paid, TokenUsage(input_tokens=1_000_000, output_tokens=0)) == (
        paid.pricing.input_per_mtok_micro
    )
    assert price_call(catalog, None, unknown_in) is None


def test_chat_can_start_llama_server_on_a_gguf_file(
    kei: Kei, store_url: str, tmp_path: Path
) -> None:
    fake_llama_server(tmp_path / "llama" / "llama-server")
    (tmp_path / "gguf" / "tiny-llama-q4.gguf").write_bytes(b"GGUF")
    extra = {"KEI_LLM_BACKENDS": "llamacpp", "KEI_LLAMA_CPP_DIR": str(tmp_path / "llama"),
             "KEI_LLAMA_SERVER_URL": f"http://127.0.0.1:{free_port()}"}  # fmt: skip
    down = kei("llm", "chat", "--model", "tiny-llama", "hi", code=1, **extra)
    assert "nothing answers" in one_error_line(down)
    result = kei("llm", "chat", "--model", "tiny-llama", "--start-server", "hi", **extra)
    assert result.stdout == "Hello world\n"
    events = llm_events(store_url)
    assert [e["ok"] for e in events if e["type"] == "llm.call.completed"] == [False, True]
    decided = [e for e in events if e["type"] == "llm.route.decided"][-1]
    assert (decided["backend"], decided["model"]) == ("llamacpp", "tiny-llama-q4")


@pytest.mark.parametrize("fast_table", [True, False])
def test_chat_speed_fast_prices_as_kei_cost_record_does(
    kei: Kei, store_url: str, tmp_path: Path, fast_table: bool
) -> None:
    """--speed fast: the entry's fast rates, recorded on the call and the agent's cost;
    an entry without them: standard rates, marked speed_unpriced, with a note."""
    fast = "\n[models.pricing.fast]\ninput_per_mtok_micro = 6000000000000\n" \
           "output_per_mtok_micro = 6000000000000\n"  # fmt: skip
    (tmp_path / "home" / "models.toml").write_text(
        '[[models]]\nid = "llama-3-70b-local"\n\n[models.pricing]\n'
        "input_per_mtok_micro = 1000000000000\noutput_per_mtok_micro = 1000000000000\n"
        'status = "needs-verification"\n' + (fast if fast_table else "")
    )  # 12 in and 3 out tokens: 15,000,000 µ¢ at standard rates, 6x fast
    done = kei("llm", "chat", "--model", "llama-3-70b-local", "--agent", "a1", "--speed", "fast",
               "hi", "--json")  # fmt: skip
    out = json.loads(done.stdout)
    micro = 90_000_000 if fast_table else 15_000_000
    assert (out["micro_cents"], out["speed"], out["speed_unpriced"]) == (
        micro, "fast", not fast_table)  # fmt: skip
    _, completed, cost = llm_events(store_url)
    for event in (completed, cost):
        assert (event["micro_cents"], event["speed"], event["speed_unpriced"]) == (
            micro, "fast", not fast_table)  # fmt: skip
    assert any("no fast price for 'llama-3-70b-local'" in n for n in out["notes"]) is not fast_table
    kei("llm", "chat", "--model", "llama-3-70b-local", "--speed", "warp", "hi", code=2)
