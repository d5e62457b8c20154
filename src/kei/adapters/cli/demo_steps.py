"""The steps of ``kei demo``: small functions sharing one ``DemoRun``, run in the
order of ``STEPS``; a new feature adds a step. The agent steps go through the same
services and renderers as ``kei agent`` and ``kei cost``, so the demo shows what
those print.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console

from kei.adapters.cli import config
from kei.domain import events as ev
from kei.domain.log.envelope import HEADER_LEN
from kei.domain.log.keys import SigningKey

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger, NewEvent
    from kei.app.ledger.verification import VerifyReport
    from kei.app.memory import MemoryService
    from kei.domain.catalog.catalog import Catalog


@dataclass(slots=True)
class DemoRun:
    """What the steps share: the folder, the ledger, and what earlier steps made."""

    folder: Path
    out: Console
    ledger: Ledger | None = None
    tampered: Path | None = None

    @property
    def settings(self) -> config.Settings:
        return config.resolve({"KEI_HOME": str(self.folder)})

    @property
    def url(self) -> str:
        return self.settings.db_url

    def catalog(self) -> Catalog:
        from kei.adapters.files.catalog import load_catalog

        return load_catalog(self.folder)

    def open(self) -> Ledger:
        assert self.ledger is not None, "step_init runs first"
        return self.ledger

    def say(self, text: str) -> None:
        self.out.print(text, markup=False)


def step_init(run: DemoRun) -> None:
    from kei.adapters.files.keyfile import write_key
    from kei.app.ledger.ledger import Ledger

    settings = run.settings
    key = SigningKey.generate(name="bootstrap")
    write_key(settings.key_path("bootstrap"), key)
    run.ledger = Ledger.open(settings.db_url, key=key, create=True)
    run.ledger.init("demo")
    run.say(f"[init] ledger {run.ledger.ledger_id}, signing key {key.key_id_hex}")


def _cost(agent: str, provider: str, model: str, micro_cents: int, tin: int, tout: int) -> NewEvent:
    from kei.app.ledger.ledger import NewEvent

    usage = ev.TokenUsage(input_tokens=tin, output_tokens=tout)
    payload = ev.CostRecorded(
        agent_id=agent, provider=provider, model=model, micro_cents=micro_cents, usage=usage
    )
    return NewEvent(f"agent/{agent}", payload)


def step_append(run: DemoRun) -> None:
    """A planner forks a coder and a tester; they spend, one fails, one merges; the key
    rotates from ``bootstrap`` to ``default``, so a kept folder works with plain ``kei``."""
    from kei.app.ledger.ledger import NewEvent

    ledger = run.open()
    fork = ev.AgentForked
    ledger.append([NewEvent("agent/planner", fork(agent_id="planner", branch="main"))])
    # 12,400 in + 1,850 out at $3 / $15 per million tokens = 6.495 cents.
    ledger.append([_cost("planner", "anthropic", "claude-sonnet-4-5", 6_495_000, 12_400, 1_850)])
    ledger.append(
        [
            NewEvent("agent/coder", fork(agent_id="coder", branch="feat/retry-backoff",
                                         parent_agent_id="planner", parent_branch="main")),
            NewEvent("agent/tester", fork(agent_id="tester", branch="test/retry-backoff",
                                          parent_agent_id="planner", parent_branch="main")),
        ]
    )  # fmt: skip
    ledger.append([_cost("coder", "anthropic", "claude-sonnet-4-5", 21_780_000, 48_100, 4_900)])
    ledger.append([_cost("tester", "ollama", "llama3.1:8b", 0, 9_300, 2_200)])
    ledger.append([NewEvent("agent/tester", ev.AgentFailed(
        agent_id="tester", reason="pytest: 2 failed, test_backoff_jitter timeout"))])  # fmt: skip
    ledger.append([NewEvent("agent/coder", ev.AgentCompleted(
        agent_id="coder", summary="jittered retry backoff, 14 tests pass"))])  # fmt: skip
    ledger.append([NewEvent("agent/coder", ev.AgentMerged(agent_id="coder"))])
    _rotate_key(run, ledger)
    ledger.append([NewEvent("agent/planner", ev.AgentCompleted(
        agent_id="planner", summary="1 of 2 children merged"))])  # fmt: skip
    run.say(
        f"[append] {ledger.store.count() - 1} events: 3 agents fork, spend, fail, finish, "
        "merge; the signing key rotates"
    )


def _rotate_key(run: DemoRun, ledger: Ledger) -> None:
    from kei.adapters.files.keyfile import write_key

    old, new = ledger.key, SigningKey.generate(name="default")
    assert old is not None
    write_key(run.settings.key_path(), new)
    ledger.add_key(new)
    ledger.key = new
    ledger.revoke_key(old.key_id_hex, "scheduled rotation")


def step_tail(run: DemoRun) -> None:
    from kei.adapters.cli.output import EventPrinter
    from kei.app.ledger.tail import latest

    shown, _ = latest(run.open().store, 100)
    run.say("[tail] kei events tail:")
    printer = EventPrinter()
    for event in shown:
        printer.show(event)


def _say_report(run: DemoRun, what: str, report: VerifyReport) -> None:
    if report.ok:
        run.say(f"[verify] {what}: {report.events_checked} events, chain and signatures OK")
        return
    run.say(f"[verify] {what}: {len(report.findings)} findings")
    for finding in report.findings:
        run.say(f"  {finding}")


# An orchestrator's team, (id, branch, parent); what each one's call cost, (agent, provider,
# model, tokens in, tokens out, µ¢ given or None to price the tokens from the catalog); and
# the amendment of the last call, billed twice.
TEAM: Final = (
    ("orchestrator", "release/1.4", None),
    ("research", "agent/research", "orchestrator"),
    ("implement", "agent/implement", "orchestrator"),
    ("illustrate", "agent/illustrate", "orchestrator"),
    ("tests", "agent/tests", "implement"),
)
SPEND: Final = (
    ("orchestrator", "anthropic", "claude-opus-4-7", 18_000, 2_400, None),
    ("research", "anthropic", "claude-sonnet-4-6", 42_000, 3_100, None),
    ("implement", "local", "qwen2.5-coder:32b", 61_000, 9_800, 2_400_000),  # GPU time
    ("illustrate", "google", "gemini-3-1-flash-image", 0, 3, None),  # 3 images, unverified
    ("tests", "anthropic", "claude-haiku-4-5", 30_000, 4_000, None),
)
AMEND: Final = ("tests", "anthropic", "claude-haiku-4-5", 15_000, 2_000, None)


def step_agents(run: DemoRun) -> None:
    """The team forks, spends (priced from the catalog, given by hand, one amended), one
    agent fails, one is merged with an outcome: what ``kei agent``/``kei cost`` append."""
    from kei.app.agents import AgentService
    from kei.app.costs import CostService, parse_event_name

    ledger, catalog = run.open(), run.catalog()
    before = ledger.store.count()
    with AgentService(ledger) as agents, CostService(ledger) as costs:
        for agent_id, branch, parent in TEAM:
            agents.fork(ev.AgentForked(agent_id=agent_id, branch=branch, parent_agent_id=parent))
        names = [costs.record(ev.CostRecorded(**_charge(catalog, *call))) for call in SPEND]
        stream, version = parse_event_name(names[-1])
        costs.amend(ev.CostAmended(**_charge(catalog, *AMEND), supersedes_stream=stream,
                                   supersedes_version=version,
                                   reason="retried call billed twice"))  # fmt: skip
        agents.fail("tests", "flaky runner: 1 of 212 tests timed out")
        agents.done("implement", "retry fix and 14 new tests")
        agents.merged("implement")
        agents.outcome("implement", "functional", escalation_depth=0, stub_count=0)
        for agent_id in ("research", "illustrate", "orchestrator"):
            agents.done(agent_id, "done")
    run.say(
        f"[agents] {ledger.store.count() - before} events: an orchestrator forks 3 agents and a "
        "grandchild; costs priced from the catalog, given, amended; one fails, one merges"
    )


def _charge(catalog: Catalog, agent: str, provider: str, model: str, tokens_in: int,
            tokens_out: int, given: int | None) -> dict[str, Any]:  # fmt: skip
    """A cost event's fields, priced as ``kei cost record`` prices them."""
    from kei.app.costs import price_request

    usage = ev.TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out)
    price = price_request(catalog, provider, model, usage, given)
    return {"agent_id": agent, "provider": provider, "model": model, "usage": usage,
            "micro_cents": price.micro_cents, "price_entry_id": price.entry_id,
            "price_entry_hash": price.entry_hash}  # fmt: skip


def step_show(run: DemoRun) -> None:
    """``kei agent tree orchestrator`` and ``kei cost report``, as they print here."""
    from kei.adapters.cli import render
    from kei.app.costs import CostService

    with CostService(run.open()) as costs:
        nodes = costs.tree("orchestrator", run.catalog())
        report = costs.report("agent", run.catalog())
    shown = (
        ("[tree] kei agent tree orchestrator:", render.agent_tree(nodes), render.tree_text(nodes)),
        ("[cost] kei cost report:", render.cost_table(report), render.report_text(report)),
    )
    for title, fancy, plain in shown:
        run.say(title)
        if run.out.is_terminal:
            run.out.print(fancy)
        else:  # byte for byte what the command prints to a pipe (rich would expand tabs)
            run.out.file.write(plain)


ROUTED_DNA = "coder::rust-test::3F2A9C01::7B1E44D0-9a0c11fe"


def step_route(run: DemoRun) -> None:
    """``kei route``: an unknown task class goes to the top model; six clean first-pass
    successes on the cheap one move its posterior over the bar; the router then picks
    it, and ``explain`` re-derives that decision from the log alone."""
    from kei.app.routing import RouteService
    from kei.domain.routing.select import DecisionInput

    with RouteService(run.open(), run.catalog()) as router:
        first = router.select(DecisionInput(dna=ROUTED_DNA)).event
        run.say(f"[route] kei route select --dna {ROUTED_DNA}: {first.model} "
                f"({first.reason}, n={first.n})")  # fmt: skip
        for _ in range(6):
            pinned = router.select(DecisionInput(dna=ROUTED_DNA, pinned="haiku")).event
            router.outcome(pinned.decision_id, "functional")
        row = router.posteriors(first.task_class)[0]
        run.say(f"[route] 6 tasks of that class pinned to haiku, each recorded functional: "
                f"{row.model} Beta({row.successes + 1}, {row.failures + 1})")  # fmt: skip
        again = router.select(DecisionInput(dna=ROUTED_DNA)).event
        run.say(f"[route] kei route select again: {again.model} ({again.reason}, lower bound "
                f"{again.lower_bound:.3f}, {again.expected_cost_micro_cents:,} µ¢ estimated "
                f"instead of {first.expected_cost_micro_cents:,})")  # fmt: skip
        explained = router.explain(again.decision_id)
    verdict = "identical" if not explained.differences else "DIFFERS"
    run.say(f"[route] kei route explain {again.decision_id}: re-derived from the "
            f"{explained.outcomes_before} outcomes before it, {verdict}")  # fmt: skip


def step_memory(run: DemoRun) -> None:
    """``kei memory``: two notes written, one rewritten (the log keeps both), and a
    full-text search that finds the latest value."""
    from kei.app.memory import MemoryService
    from kei.domain.events.memory import MemoryWritten

    notes = (
        ("retry-policy", "jittered exponential backoff, at most 5 tries", ("rust", "retry")),
        ("flaky-test", "test_backoff_jitter times out under load; raise its timeout", ("ci",)),
        ("retry-policy", "jittered exponential backoff, at most 6 tries", ("rust", "retry")),
    )
    with MemoryService(run.open()) as memory:
        for key, value, tags in notes:
            memory.write(MemoryWritten(namespace="default", key=key, value=value,
                                       kind="concept", tags=tags))  # fmt: skip
        found = memory.search("backoff tries")
        refused = _refused_secret(memory)
    run.say(f"[memory] kei memory write: {len(notes)} writes, 2 keys (the log keeps both "
            "values of retry-policy)")  # fmt: skip
    for item in found:
        run.say(f"[memory] kei memory search 'backoff tries': {item['key']} = {item['value']}")
    run.say(f"[leaks] kei memory write deploy-creds 'AKIA…': {refused}")


def _refused_secret(memory: MemoryService) -> str:
    """A fake AWS key (the documented format, not a real key) never reaches the log."""
    from kei.domain.events.memory import MemoryWritten
    from kei.errors import LeakBlockedError

    fake = "AKIA" + "Q7RZ5W3NPL4HGT2X"
    try:
        memory.write(MemoryWritten(namespace="default", key="deploy-creds", value=f"key {fake}"))
    except LeakBlockedError as exc:
        return str(exc)
    return "written (the leak matrix did not stop it)"


def step_retro(run: DemoRun) -> None:
    """``kei retro``: a small Claude Code transcript ingested twice (the second time
    appends nothing), and the session's retrospective from the trace's own times."""
    import json

    from kei.adapters.files.leaks import shipped_matrix
    from kei.app.retro import RetroService
    from kei.domain.retro.sessions import retrospective

    path = run.folder / "session.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in _transcript()))
    with RetroService(run.open(), shipped_matrix()) as retro:
        first, again = retro.ingest(path, "demo"), retro.ingest(path, "demo")
        found = retrospective(retro.events("demo"), "demo")
    run.say(f"[retro] kei retro ingest session.jsonl --session demo: {first.appended} events; "
            f"again: {again.appended} appended, {again.known} already in the log")  # fmt: skip
    assert found is not None
    seconds = (found.duration_us or 0) // 1_000_000
    tools = ", ".join(f"{name} ({n})" for name, n in found.top_tools)
    run.say(f"[retro] kei retro show demo: {found.events} events, {found.tool_calls} tool calls, "
            f"{found.errors} error, {seconds} s; tools: {tools}")  # fmt: skip


def _transcript() -> list[dict[str, object]]:
    """Six lines in Claude Code's transcript format: a prompt, a read, a failing test run."""

    def line(kind: str, second: int, content: object) -> dict[str, object]:
        return {"type": kind, "timestamp": f"2026-11-25T09:00:{second:02d}.000Z",
                "sessionId": "demo", "cwd": "/repo",
                "message": {"role": kind, "content": content}}  # fmt: skip

    def use(name: str, tool_id: str, **given: str) -> dict[str, object]:
        return {"type": "tool_use", "id": tool_id, "name": name, "input": given}

    def result(tool_id: str, text: str, error: bool) -> dict[str, object]:
        return {"type": "tool_result", "tool_use_id": tool_id, "content": text, "is_error": error}

    return [
        line("user", 0, "Add jitter to the retry backoff in src/retry.rs and run the tests."),
        line("assistant", 4, [use("Read", "t1", file_path="/repo/src/retry.rs")]),
        line("user", 5, [result("t1", "fn backoff(attempt: u32) -> Duration { .. }", False)]),
        line("assistant", 31, [use("Edit", "t2", file_path="/repo/src/retry.rs")]),
        line("assistant", 40, [use("Bash", "t3", command="cargo test retry")]),
        line("user", 52, [result("t3", "test backoff_jitter ... FAILED (timeout)", True)]),
    ]


def step_bundle(run: DemoRun) -> None:
    """``kei hibernate export`` then ``kei replay --from`` into a second, empty store:
    the same events, and every read model rebuilt there to the exporter's digest."""
    from kei.app.bundle.export import export_bundle
    from kei.app.bundle.replay import replay_bundle

    bundle = run.folder / "brain.tar.zst"
    exported = export_bundle(run.open(), bundle, url=run.url, machine="demo")
    m = exported.manifest
    run.say(f"[bundle] kei hibernate export: {m.events} events, positions "
            f"{m.first_position}..{m.last_position}, {exported.bytes:,} bytes, signed")  # fmt: skip
    copy = run.folder / "restored.db"
    report = replay_bundle(bundle, f"sqlite:///{copy}")
    run.say(f"[replay] kei replay --from {bundle.name} --db {copy.name}: {report.mode}, "
            f"{report.appended} events, {report.keys} keys, every signature checked")  # fmt: skip
    for d in report.digests:
        run.say(f"  {d.name:<13} {d.status:<8} {(d.found or '-')[:23]}…")
    if not report.ok:
        raise RuntimeError("the demo's replay did not match its bundle: this is a bug in kei")


def step_verify(run: DemoRun) -> None:
    from kei.app.ledger.verification import verify_store

    _say_report(run, "kei verify-chain", verify_store(run.open().store))


def step_prove(run: DemoRun) -> None:
    """``kei checkpoint``, ``kei prove inclusion`` and ``kei keys export --vkey`` write three
    small files; ``kei verify-proof`` then checks the merge is in the signed log from those
    files alone, without the database."""
    import json

    from kei.app.ledger.proving import prove_inclusion
    from kei.domain.log.checkpoint import parse_checkpoint, parse_vkey, vkey
    from kei.domain.log.proofs import check_proof, parse_proof

    ledger = run.open()
    assert ledger.key is not None
    merged = next(e for e in ledger.read() if e.type == "agent.merged")
    head = ledger.checkpoint()
    inclusion = prove_inclusion(ledger.store, ledger.ledger_id, merged.position)
    files = {
        "head.ckpt": head,
        "merge.proof.json": json.dumps(inclusion.to_dict()),
        "vkey": vkey(ledger.ledger_id, ledger.key.public_key),
    }
    for name, text in files.items():
        (run.folder / name).write_text(text, encoding="utf-8")
    run.say(
        f"[prove] kei prove inclusion {merged.position} ({merged.type}): leaf "
        f"{inclusion.leaf_index} of {inclusion.tree_size}, {len(inclusion.hashes)} hashes in the "
        "audit path"
    )
    # From here on, only the three files: no database, no KEI_HOME.
    cp = parse_checkpoint((run.folder / "head.ckpt").read_text(encoding="utf-8"))
    vkeys = [parse_vkey((run.folder / "vkey").read_text(encoding="utf-8"))]
    proof = parse_proof((run.folder / "merge.proof.json").read_text(encoding="utf-8"))
    problem = check_proof(proof, cp, vkeys)
    if problem:
        raise RuntimeError(f"the demo's inclusion proof does not hold ({problem}): a kei bug")
    run.say(
        "[verify-proof] kei verify-proof merge.proof.json --checkpoint head.ckpt --vkey vkey: "
        f"OK, position {merged.position} is in the signed log of {cp.size}, checked without "
        "the database"
    )


def step_tamper(run: DemoRun) -> None:
    """Copy the database (backup API, so WAL content comes along) and flip one stored byte."""
    ledger = run.open()
    source = run.folder / "ledger.db"
    run.tampered = run.folder / "tampered.db"
    victim = next(
        e for e in ledger.read() if e.type == "cost.recorded" and e.stream == "agent/coder"
    )
    src, dst = sqlite3.connect(source), sqlite3.connect(run.tampered)
    try:
        src.backup(dst)
        sql = "SELECT state FROM kei_events WHERE rowid = ?"
        (state,) = dst.execute(sql, (victim.position,)).fetchone()
        flipped = bytearray(state)
        at = HEADER_LEN + (len(flipped) - HEADER_LEN) // 2
        flipped[at] ^= 0x01
        sql = "UPDATE kei_events SET state = ? WHERE rowid = ?"
        dst.execute(sql, (bytes(flipped), victim.position))
        dst.commit()
    finally:
        src.close()
        dst.close()
    run.say(
        f"[tamper] flipped one bit of byte {at} of position {victim.position} "
        f"({victim.type}) in a copy: {run.tampered.name}"
    )


def step_catch(run: DemoRun) -> None:
    from kei.adapters.store import open_store
    from kei.app.ledger.verification import verify_store

    assert run.tampered is not None, "step_tamper runs first"
    store = open_store(f"sqlite:///{run.tampered}")
    try:
        report = verify_store(store)
    finally:
        store.close()
    _say_report(run, "kei verify-chain on the copy", report)
    if report.ok:
        raise RuntimeError("the demo's tampering went undetected: this is a bug in kei")
    run.say("tampering caught; the original ledger still verifies clean")


STEPS: tuple[Callable[[DemoRun], None], ...] = (
    step_init,
    step_append,
    step_tail,
    step_agents,
    step_show,
    step_route,
    step_memory,
    step_retro,
    step_bundle,
    step_verify,
    step_prove,
    step_tamper,
    step_catch,
)
