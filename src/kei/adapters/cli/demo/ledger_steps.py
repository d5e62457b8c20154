"""The demo's log: a ledger made, its signing key rotated once the team has worked, and
``kei events tail`` over the latest events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from kei.adapters.cli.demo.run import DemoRun
from kei.domain.log.keys import SigningKey

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger


def step_init(run: DemoRun) -> None:
    from kei.adapters.files.keyfile import write_key
    from kei.app.ledger.ledger import Ledger

    settings = run.settings
    key = SigningKey.generate(name="bootstrap")
    write_key(settings.key_path("bootstrap"), key)
    run.ledger = Ledger.open(settings.db_url, key=key, create=True)
    run.ledger.init("demo")
    run.say(f"[init] ledger {run.ledger.ledger_id}, signing key {key.key_id_hex}")


def step_rotate(run: DemoRun) -> None:
    """The signing key rotates from ``bootstrap`` to ``default`` (so a kept folder works
    with plain ``kei``), and the orchestrator closes the release under the new key."""
    from kei.app.agents import AgentService

    ledger = run.open()
    _rotate_key(run, ledger)
    with AgentService(ledger) as agents:
        agents.done("orchestrator", "release 1.4: retry fix merged, tests to rerun")
    run.say("[keys] the signing key rotates: `default` is added, `bootstrap` revoked; the "
            "orchestrator finishes under the new key")  # fmt: skip


def _rotate_key(run: DemoRun, ledger: Ledger) -> None:
    from kei.adapters.files.keyfile import write_key

    old, new = ledger.key, SigningKey.generate(name="default")
    assert old is not None
    write_key(run.settings.key_path(), new)
    ledger.add_key(new)
    ledger.key = new
    ledger.revoke_key(old.key_id_hex, "scheduled rotation")


TAIL: Final = 25  # the whole story: every event of this demo's log so far


def step_tail(run: DemoRun) -> None:
    from kei.adapters.cli.output import EventPrinter
    from kei.app.ledger.tail import latest

    shown, _ = latest(run.open().store, TAIL)
    run.say(f"[tail] kei events tail -n {TAIL}:")
    printer = EventPrinter()
    for event in shown:
        printer.show(event)
