"""The local LLM backends against real HTTP servers on 127.0.0.1 (``llm_servers.py``) that
speak Ollama's and llama-server's protocols, plus llama.cpp discovery and server start,
MLX through a stand-in ``mlx_lm.generate``, health, and the router (spec §7, §12 item 9).

Failures are checked as a user meets them: one ``LlmError`` line naming the backend, for
a 404, a 500, a connection dropped mid-stream, an in-stream error, a server that reads
the request and never answers, one that never even accepts, and nothing listening.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kei.adapters.files.catalog import load_catalog
from kei.adapters.llm.health import Endpoints, check_all, check_llamacpp, check_ollama
from kei.adapters.llm.llama_server import LlamaServerBackend
from kei.adapters.llm.llamacpp import (
    LlamaCppBackend,
    default_gguf_dirs,
    find_binaries,
    find_gguf,
    start_server,
)
from kei.adapters.llm.mlx import MlxBackend, hf_cache_models, parse_stats
from kei.adapters.llm.ollama import OllamaBackend
from kei.adapters.llm.protocol import Chunk, Completion, Message, Timeouts
from kei.adapters.llm.router import Capacity, Inventory, decide, discover
from kei.domain.catalog.catalog import Catalog
from kei.domain.events.payload import TokenUsage
from kei.errors import (
    BackendResponseError,
    BackendTimeoutError,
    BackendUnreachableError,
    InputError,
    LlmError,
    ModelNotServedError,
    NoBackendAvailableError,
    NoCompatibleBackendError,
    PlatformError,
)
from llm_servers import (
    Behaviour,
    LlamaServer,
    OllamaServer,
    SilentServer,
    closed_port_url,
    fake_llama_server,
    free_port,
    make_executable,
)

FAST = Timeouts(connect_s=0.5, read_s=0.5)
HI = [Message("user", "hi")]


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server


@pytest.fixture
def llama_server() -> Iterator[LlamaServer]:
    with LlamaServer() as server:
        yield server


@contextmanager
def ollama_in(mode: str, **kw: Any) -> Iterator[OllamaBackend]:
    """A client of an Ollama server in ``mode`` (see ``llm_servers.Behaviour``)."""
    with OllamaServer(Behaviour(mode=mode, **kw)) as server, OllamaBackend(server.url, FAST) as o:
        yield o


@contextmanager
def llama_in(mode: str) -> Iterator[LlamaServerBackend]:
    with LlamaServer(Behaviour(mode=mode)) as server, LlamaServerBackend(server.url, FAST) as s:
        yield s


def collect() -> tuple[list[str], object]:
    pieces: list[str] = []

    def on_chunk(chunk: Chunk) -> None:
        pieces.append(chunk.text)

    return pieces, on_chunk


def assert_one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


# -- Ollama ------------------------------------------------------------------------------


def test_ollama_lists_tags_loaded_models_and_version(ollama_server: OllamaServer) -> None:
    with OllamaBackend(ollama_server.url, FAST) as ollama:
        assert ollama.list_models() == ["llama3:8b", "llama3:70b"]
        assert ollama.running_models() == ["llama3:8b"]
        assert ollama.version() == "0.6.2"
        health = ollama.health()
    assert health.available and health.backend_kind == "ollama"
    assert "0.6.2" in health.reason


def test_ollama_chat_streams_and_takes_usage_from_its_counters(
    ollama_server: OllamaServer,
) -> None:
    pieces, on_chunk = collect()
    with OllamaBackend(ollama_server.url, FAST) as ollama:
        done = ollama.chat("llama3:8b", HI, on_chunk=on_chunk)  # type: ignore[arg-type]
    assert pieces == ["Hel", "lo", " world"]
    assert done == Completion(
        text="Hello world",
        usage=TokenUsage(input_tokens=12, output_tokens=3),
        total_us=5_123_456,  # 5_123_456_789 ns, floored to whole µs
        load_us=1_000,
        prompt_us=250_000,
        generation_us=4_000_000,
        finish_reason="stop",
    )
    method, path, body = ollama_server.requests[-1]
    assert (method, path) == ("POST", "/api/chat")
    assert body == {"model": "llama3:8b", "messages": [{"role": "user", "content": "hi"}],
                    "stream": True}  # fmt: skip


def test_ollama_without_a_callback_asks_for_one_answer(ollama_server: OllamaServer) -> None:
    with OllamaBackend(ollama_server.url, FAST) as ollama:
        done = ollama.chat("llama3:8b", HI)
        generated = ollama.generate("llama3:70b", "hi", system="be brief")
    assert done.text == generated.text == "Hello world"
    assert done.usage == TokenUsage(input_tokens=12, output_tokens=3)
    chat_body, gen_body = ollama_server.requests[-2][2], ollama_server.requests[-1][2]
    assert chat_body["stream"] is False  # Ollama streams unless told not to
    assert gen_body == {"model": "llama3:70b", "prompt": "hi", "stream": False,
                        "system": "be brief"}  # fmt: skip


def test_ollama_generate_streams(ollama_server: OllamaServer) -> None:
    pieces, on_chunk = collect()
    with OllamaBackend(ollama_server.url, FAST) as ollama:
        done = ollama.generate("llama3:8b", "hi", on_chunk=on_chunk)  # type: ignore[arg-type]
    assert "".join(pieces) == done.text == "Hello world"
    assert ollama_server.requests[-1][1] == "/api/generate"


def test_a_cached_prompt_leaves_the_input_count_unknown_not_zero() -> None:
    with ollama_in("ok", cached_prompt=True) as ollama:
        streamed = ollama.chat("llama3:8b", HI, on_chunk=lambda c: None)
        whole = ollama.chat("llama3:8b", HI)
    assert streamed.usage == whole.usage == TokenUsage(input_tokens=None, output_tokens=3)


def test_ollama_unknown_model_is_model_not_served(ollama_server: OllamaServer) -> None:
    with (
        OllamaBackend(ollama_server.url, FAST) as ollama,
        pytest.raises(ModelNotServedError, match="has no model 'nope:1b'") as err,
    ):
        ollama.chat("nope:1b", HI, on_chunk=lambda c: None)
    assert_one_line(err.value)
    assert err.value.hint is not None and "ollama pull nope:1b" in err.value.hint


def test_ollama_404_on_a_listing_is_an_http_error() -> None:
    with ollama_in("404") as o, pytest.raises(BackendResponseError, match="HTTP 404") as err:
        o.list_models()
    assert err.value.status == 404


@pytest.mark.parametrize("stream", [True, False])
def test_ollama_500_carries_the_server_message(stream: bool) -> None:
    with (
        ollama_in("500") as o,
        pytest.raises(BackendResponseError, match="HTTP 500: llama runner process") as err,
    ):
        o.chat("llama3:8b", HI, on_chunk=(lambda c: None) if stream else None)
    assert err.value.status == 500
    assert_one_line(err.value)


def test_ollama_connection_dropped_mid_stream() -> None:
    pieces, on_chunk = collect()
    with (
        ollama_in("drop") as o,
        pytest.raises(BackendResponseError, match="connection dropped") as err,
    ):
        o.chat("llama3:8b", HI, on_chunk=on_chunk)  # type: ignore[arg-type]
    assert pieces == ["Hel"]  # what arrived before the cut was passed on
    assert_one_line(err.value)


def test_ollama_error_line_in_the_stream() -> None:
    with (
        ollama_in("error-line") as o,
        pytest.raises(BackendResponseError, match="failed: an error was encountered"),
    ):
        o.chat("llama3:8b", HI, on_chunk=lambda c: None)


def test_ollama_server_that_reads_the_request_and_never_answers() -> None:
    with ollama_in("hang") as o:
        with pytest.raises(BackendTimeoutError, match=re.escape("no answer within 0.5 s")) as err:
            o.chat("llama3:8b", HI, on_chunk=lambda c: None)
        assert not o.health().available
    assert_one_line(err.value)


def test_ollama_server_that_never_accepts() -> None:
    with SilentServer() as silent, OllamaBackend(silent.url, FAST) as o:
        with pytest.raises(BackendTimeoutError):
            o.list_models()
        health = o.health()
    assert not health.available
    assert "within 1 s" in health.reason  # the health probe's own 1 s timeout


def test_nothing_listening_is_unreachable() -> None:
    with OllamaBackend(closed_port_url(), FAST) as o:
        with pytest.raises(BackendUnreachableError, match="nothing answers") as err:
            o.chat("llama3:8b", HI)
        assert not o.health().available
    assert_one_line(err.value)


# -- llama-server --------------------------------------------------------------------------


def test_llama_server_health_models_and_loading() -> None:
    with LlamaServer() as server, LlamaServerBackend(server.url, FAST) as llama:
        assert llama.health().available
        assert llama.list_models() == ["Meta-Llama-3-8B-Instruct-Q4_K_M.gguf"]
        server.behaviour.mode = "loading"
        health = llama.health()
    assert not health.available and "loading a model" in health.reason


LLAMA_DONE = Completion(
    text="Hello world",
    usage=TokenUsage(input_tokens=12, output_tokens=3),
    total_us=42_750,
    prompt_us=12_500,  # 12.5 ms
    generation_us=30_250,  # 30.25 ms
    finish_reason="stop",  # llama.cpp's "eos"
)


@pytest.mark.parametrize("stream", [True, False])
def test_llama_server_completion(llama_server: LlamaServer, stream: bool) -> None:
    pieces, on_chunk = collect()
    with LlamaServerBackend(llama_server.url, FAST) as llama:
        done = llama.generate("m", "hi", on_chunk=on_chunk if stream else None)  # type: ignore[arg-type]
    assert done == LLAMA_DONE
    assert pieces == (["Hel", "lo", " world"] if stream else [])
    assert llama_server.requests[-1][1:] == ("/completion", {"prompt": "hi", "stream": stream})


@pytest.mark.parametrize("stream", [True, False])
def test_llama_server_chat_in_openai_shape(llama_server: LlamaServer, stream: bool) -> None:
    pieces, on_chunk = collect()
    with LlamaServerBackend(llama_server.url, FAST) as llama:
        done = llama.chat("m", HI, on_chunk=on_chunk if stream else None)  # type: ignore[arg-type]
    assert done == LLAMA_DONE
    assert "".join(pieces) == ("Hello world" if stream else "")
    body = llama_server.requests[-1][2]
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body.get("stream_options") == ({"include_usage": True} if stream else None)


def test_llama_server_404_names_the_model() -> None:
    with (
        llama_in("404") as s,
        pytest.raises(ModelNotServedError, match=re.escape("has no model 'm' (File Not Found)")),
    ):
        s.chat("m", HI, on_chunk=lambda c: None)


def test_llama_server_500_carries_the_openai_style_message() -> None:
    with (
        llama_in("500") as s,
        pytest.raises(BackendResponseError, match="HTTP 500: failed to decode the batch"),
    ):
        s.generate("m", "hi")


@pytest.mark.parametrize("call", ["chat", "generate"])
def test_llama_server_dropped_mid_stream(call: str) -> None:
    pieces, on_chunk = collect()
    with (
        llama_in("drop") as s,
        pytest.raises(BackendResponseError, match="connection dropped") as err,
    ):
        if call == "chat":
            s.chat("m", HI, on_chunk=on_chunk)  # type: ignore[arg-type]
        else:
            s.generate("m", "hi", on_chunk=on_chunk)  # type: ignore[arg-type]
    assert pieces == ["Hel"]
    assert_one_line(err.value)


def test_llama_server_error_event_in_the_stream() -> None:
    with (
        llama_in("error-line") as s,
        pytest.raises(BackendResponseError, match=r"failed: .*slot unavailable"),
    ):
        s.chat("m", HI, on_chunk=lambda c: None)


def test_llama_server_that_never_answers() -> None:
    with (
        llama_in("hang") as s,
        pytest.raises(BackendTimeoutError, match=re.escape("no answer within 0.5 s")),
    ):
        s.generate("m", "hi", on_chunk=lambda c: None)


# -- llama.cpp discovery and start ---------------------------------------------------------


def test_binaries_from_the_override_folder_win_over_path(tmp_path: Path) -> None:
    on_path = make_executable(tmp_path / "path" / "llama-server", "#!/bin/sh\n")
    cli = make_executable(tmp_path / "path" / "llama-cli", "#!/bin/sh\n")
    override = make_executable(tmp_path / "custom" / "llama-server", "#!/bin/sh\n")
    env = {"PATH": str(on_path.parent)}
    assert find_binaries(env).server == on_path
    found = find_binaries({**env, "KEI_LLAMA_CPP_DIR": str(override.parent)})
    assert (found.server, found.cli) == (override, cli)
    assert not find_binaries({"PATH": str(tmp_path / "empty")}).any_found


def test_gguf_files_by_name_below_the_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "a" / "Llama-3-8B.Q4_K_M.gguf").write_bytes(b"GGUF")
    (tmp_path / "a" / "deep" / "mistral-7b.gguf").write_bytes(b"GGUF")
    (tmp_path / "a" / ".hidden.gguf").write_bytes(b"GGUF")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mistral-7b.gguf").write_bytes(b"GGUF")
    found = find_gguf([tmp_path / "a", tmp_path / "b", tmp_path / "missing"])
    assert found == {
        "Llama-3-8B.Q4_K_M": tmp_path / "a" / "Llama-3-8B.Q4_K_M.gguf",
        "mistral-7b": tmp_path / "a" / "deep" / "mistral-7b.gguf",  # first folder wins
    }
    env = {"KEI_GGUF_DIRS": os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])}
    assert default_gguf_dirs(env) == [tmp_path / "a", tmp_path / "b"]
    assert default_gguf_dirs({"HOME": str(tmp_path)})[-1] == tmp_path / "models"


def test_start_server_launches_llama_server_and_waits_until_ready(tmp_path: Path) -> None:
    binary = fake_llama_server(tmp_path / "llama-server")
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    with start_server(binary, model, port=free_port(), timeouts=FAST) as running:
        assert running.backend.health().available
        assert running.backend.chat("tiny", HI).text == "Hello world"
    assert running.process.poll() is not None  # stopped on leaving


def test_start_server_reports_a_server_that_exits(tmp_path: Path) -> None:
    binary = make_executable(tmp_path / "llama-server", "#!/bin/sh\nexit 7\n")
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(PlatformError, match="exited with code 7"):
        start_server(binary, model, port=free_port(), timeouts=FAST)
    with pytest.raises(ModelNotServedError, match="no GGUF file"):
        start_server(binary, tmp_path / "missing.gguf")


# -- MLX -----------------------------------------------------------------------------------


def test_mlx_off_apple_silicon_is_one_clear_error() -> None:
    mlx = MlxBackend({"PATH": ""}, system="linux", machine="x86_64")
    health = mlx.health()
    assert not health.available
    assert health.reason == "MLX needs macOS on Apple Silicon (this is linux x86_64)"
    with pytest.raises(PlatformError, match="MLX needs macOS on Apple Silicon") as err:
        mlx.chat("mlx-community/Llama-3-8B-4bit", HI)
    assert_one_line(err.value)
    with pytest.raises(PlatformError):
        mlx.list_models()


FAKE_MLX = """#!{python}
import sys, time
args = sys.argv
prompt = args[args.index("--prompt") + 1]
if prompt == "sleep":
    time.sleep(30)
if prompt == "fail":
    sys.stderr.write("Traceback (most recent call last):\\nValueError: no such model\\n")
    sys.exit(1)
sys.stdout.write("Fetching 6 files\\n==========\\n")
for piece in ["Hel", "lo ", "world", "\\n=", "== not a separator"]:
    sys.stdout.write(piece)
    sys.stdout.flush()
sys.stdout.write("\\n==========\\nPrompt: 12 tokens, 120.000 tokens-per-sec\\n"
                 "Generation: 5 tokens, 50.000 tokens-per-sec\\nPeak memory: 4.521 GB\\n")
"""


@pytest.fixture
def fake_mlx(tmp_path: Path) -> MlxBackend:
    make_executable(tmp_path / "bin" / "mlx_lm.generate", FAKE_MLX.format(python=sys.executable))
    env = {"PATH": str(tmp_path / "bin"), "HF_HUB_CACHE": str(tmp_path / "hub")}
    return MlxBackend(env, timeouts=FAST, system="darwin", machine="arm64")


def test_mlx_generate_streams_the_text_between_the_separators(fake_mlx: MlxBackend) -> None:
    pieces, on_chunk = collect()
    done = fake_mlx.chat("mlx-community/Llama-3-8B-4bit", HI, on_chunk=on_chunk)  # type: ignore[arg-type]
    text = "Hello world\n=== not a separator"
    assert done.text == "".join(pieces) == text
    assert done.usage == TokenUsage(input_tokens=12, output_tokens=5)
    assert (done.prompt_us, done.generation_us, done.total_us) == (100_000, 100_000, 200_000)
    assert fake_mlx.health().available


def test_mlx_failures_are_one_line(fake_mlx: MlxBackend) -> None:
    with pytest.raises(BackendResponseError, match=r"exited with code 1: .*no such model") as err:
        fake_mlx.generate("m", "fail")
    assert_one_line(err.value)
    with pytest.raises(BackendTimeoutError, match=re.escape("printed nothing for 0.5 s")):
        fake_mlx.generate("m", "sleep")


def test_mlx_models_are_the_hugging_face_cache_ids(tmp_path: Path) -> None:
    for name in ("models--mlx-community--Llama-3-8B-4bit", "datasets--x--y", "models--a--b"):
        (tmp_path / "hub" / name).mkdir(parents=True)
    assert hf_cache_models({"HF_HUB_CACHE": str(tmp_path / "hub")}) == [
        "a/b", "mlx-community/Llama-3-8B-4bit"]  # fmt: skip
    assert hf_cache_models({"HF_HOME": str(tmp_path / "nothing")}) == []


def test_mlx_stats_parse() -> None:
    usage, prompt_us, gen_us = parse_stats("Prompt: 3 tokens, 1.5 tokens-per-sec\n")
    assert usage == TokenUsage(input_tokens=3)
    assert (prompt_us, gen_us) == (2_000_000, None)


# -- health ----------------------------------------------------------------------------------


def test_check_all_in_upstream_order(ollama_server: OllamaServer, tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}
    found = check_all(env, Endpoints(ollama=ollama_server.url, llama_server=closed_port_url()))
    assert [h.backend_kind for h in found] == ["mlx", "llamacpp", "ollama"]
    assert [h.available for h in found[1:]] == [False, True]
    assert "neither llama-cli nor llama-server" in found[1].reason


def test_llamacpp_health_counts_a_running_server_or_a_binary(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    assert check_llamacpp({"PATH": str(tmp_path)}, llama_server.url).available
    make_executable(tmp_path / "llama-cli", "#!/bin/sh\n")
    alone = check_llamacpp({"PATH": str(tmp_path)}, closed_port_url())
    assert alone.available and "cli=" in alone.reason


def test_endpoints_from_env() -> None:
    assert Endpoints.from_env({}) == Endpoints("http://127.0.0.1:11434", "http://127.0.0.1:8080")
    assert Endpoints.from_env({"KEI_OLLAMA_URL": "http://h:1", "KEI_LLAMA_SERVER_URL": "http://h:2"}
                              ) == Endpoints("http://h:1", "http://h:2")  # fmt: skip
    assert not check_ollama(closed_port_url()).available


# -- router -----------------------------------------------------------------------------------

MID = Capacity("RunsMidModels", ("llamacpp", "ollama"), ("Intel, 16 GB",))
NONE = Capacity("NoLocalInferenceViable", (), ("OS not macOS", "no GPU"))
INV = [Inventory("llamacpp", ("Meta-Llama-3-8B-Instruct-Q4_K_M",)),
       Inventory("ollama", ("llama3:70b", "mistral:7b"))]  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(None)


def test_not_viable_and_require_local_is_no_compatible_backend() -> None:
    with pytest.raises(NoCompatibleBackendError, match="OS not macOS; no GPU") as err:
        decide("llama-3-70b-local", [], NONE, require_local=True)
    assert err.value.reason == "OS not macOS; no GPU"


def test_no_backend_at_all_tried_none() -> None:
    with pytest.raises(NoBackendAvailableError) as err:
        decide("llama-3-70b-local", [], NONE)
    assert err.value.tried == ("<none>",)
    assert err.value.models_tried == ("llama-3-70b-local",)


def test_first_viable_backend_wins_with_upstreams_rationale() -> None:
    d = decide("mistral-7b", INV, MID)
    assert (d.backend, d.model, d.exact) == ("ollama", "mistral:7b", False)
    assert d.rationale[0] == "first viable backend `ollama` matched `mistral:7b` (fuzzy)"
    assert d.tried == ("llamacpp:mistral-7b", "ollama:mistral-7b")
    assert d.capability == "RunsMidModels"
    e = decide("llama3-8b", INV, MID)
    assert (e.backend, e.model) == ("llamacpp", "Meta-Llama-3-8B-Instruct-Q4_K_M")
    assert decide("llama3:70b", INV, MID).rationale[0] == (
        "first viable backend `ollama` matched `llama3:70b` (exact)"
    )


def test_catalog_pricing_is_attached(catalog: Catalog) -> None:
    d = decide("llama-3-70b-local", INV, MID, catalog=catalog)
    assert d.pricing is not None and d.pricing.input_per_mtok_micro == 0
    assert d.rationale[-1] == "registry pricing status: verified"


def test_the_fallback_walk_reaches_a_local_model(catalog: Catalog) -> None:
    chain = [m.id for m in catalog.chain("opus").models]
    for require_local in (False, True):
        d = decide("opus", INV, MID, catalog=catalog, require_local=require_local)
        assert (d.backend, d.model, d.matched_model) == ("ollama", "llama3:70b", chain[-1])
        assert d.via_fallback and chain[-1] == "llama-3-70b-local"
        walked = ["opus", *chain[1:]]
        assert d.tried == tuple(f"{k}:{m}" for m in walked for k in ("llamacpp", "ollama"))
        assert f"fallback step {len(chain) - 1} `llama-3-70b-local`" in d.rationale[1]


def test_an_unservable_chain_records_every_model_tried(catalog: Catalog) -> None:
    only = [Inventory("ollama", ("qwen2:7b",), None), Inventory("llamacpp", (), "no server")]
    with pytest.raises(NoBackendAvailableError, match="backends tried: ollama, llamacpp") as err:
        decide("opus", only, MID, catalog=catalog)
    assert err.value.models_tried == ("opus", *[m.id for m in catalog.chain("opus").models[1:]])
    assert err.value.hint is not None and "llamacpp: no server" in err.value.hint


def test_role_skips_fallbacks_without_the_tag(catalog: Catalog) -> None:
    d = decide("opus", INV, MID, catalog=catalog, role="free")
    assert d.matched_model == "llama-3-70b-local"
    assert any("skipped: no role tag 'free'" in r for r in d.rationale)
    with pytest.raises(NoBackendAvailableError):
        decide("opus", INV, MID, catalog=catalog, role="no-such-role")


def test_budget_skips_models_over_it_the_requested_one_included(catalog: Catalog) -> None:
    ollama_has_gpt = [Inventory("ollama", ("gpt-4o-mini", "llama3:70b"))]
    assert decide("opus", ollama_has_gpt, MID, catalog=catalog).model == "gpt-4o-mini"
    d = decide("opus", ollama_has_gpt, MID, catalog=catalog, budget_micro=0)
    assert d.model == "llama3:70b"
    assert any("`gpt-4o-mini` skipped" in r and "over the budget of 0" in r for r in d.rationale)


def test_a_fallback_cycle_stops_the_walk_not_the_route() -> None:
    def entry(mid: str, fallback: str) -> dict[str, object]:
        return {"id": mid, "provider": "local", "status": "active", "fallback": fallback,
                "pricing": {"input_per_mtok_micro": 0, "output_per_mtok_micro": 0,
                            "status": "placeholder"}}  # fmt: skip

    looped = Catalog.from_data({"models": [entry("aa", "bb"), entry("bb", "aa")]}, source="t")
    with pytest.raises(NoBackendAvailableError) as err:
        decide("aa", INV, MID, catalog=looped)
    assert err.value.models_tried == ("aa",)
    assert "cycle in fallback chain" in (err.value.hint or "")


def test_discover_keeps_going_past_a_failing_backend() -> None:
    def broken() -> list[str]:
        raise BackendUnreachableError("ollama at http://x: nothing answers")

    found = discover([("ollama", broken), ("llamacpp", lambda: ["a.gguf"])])
    assert found == [Inventory("ollama", (), "ollama at http://x: nothing answers"),
                     Inventory("llamacpp", ("a.gguf",))]  # fmt: skip
    assert all(isinstance(e, LlmError) for e in (BackendUnreachableError("x"),))


def test_llamacpp_backend_lists_the_running_server_else_gguf_files(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    (tmp_path / "phi-3-mini.gguf").write_bytes(b"GGUF")
    env = {"KEI_GGUF_DIRS": str(tmp_path), "PATH": str(tmp_path)}
    up = LlamaCppBackend(LlamaServerBackend(llama_server.url, FAST), env)
    down = LlamaCppBackend(LlamaServerBackend(closed_port_url(), FAST), env, start=True)
    try:
        assert up.list_models() == ["Meta-Llama-3-8B-Instruct-Q4_K_M.gguf"]
        assert up.chat("any", HI).text == "Hello world"
        assert down.list_models() == ["phi-3-mini"]
        with pytest.raises(ModelNotServedError, match=r"no GGUF file named nope\.gguf"):
            down.chat("nope", HI)
        with pytest.raises(PlatformError, match="llama-server is not on PATH"):
            down.chat("phi-3-mini", HI)
    finally:
        up.close()
        down.close()


def test_an_empty_model_name_is_refused_before_any_backend_is_asked() -> None:
    with pytest.raises(InputError, match="the model name is empty"):
        decide("  ", [], MID)


def test_llama_server_reads_openais_cached_and_reasoning_parts() -> None:
    """OpenAI's counts already include their parts (kei's convention): kept as given."""
    from kei.adapters.llm.llama_server import _from_openai

    usage = {"prompt_tokens": 100, "completion_tokens": 40,
             "prompt_tokens_details": {"cached_tokens": 64},
             "completion_tokens_details": {"reasoning_tokens": 30}}  # fmt: skip
    done = _from_openai({"usage": usage}, "x", "stop")
    assert done.usage == TokenUsage(input_tokens=100, output_tokens=40, cache_read_tokens=64,
                                    reasoning_tokens=30)  # fmt: skip
