"""The demo's log: a ledger made, three agents' events appended while the signing key
rotates, and ``kei events tail`` over them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kei.adapters.cli.demo.run import DemoRun
from kei.domain import events as ev
from kei.domain.log.keys import SigningKey

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger, NewEvent


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
