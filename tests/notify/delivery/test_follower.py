"""The rule follower on real stores: each trigger is requested exactly once, whatever
replays, restarts or second followers do; a secret in a request is withheld, never
signed; a break in the chain stops the follower at the break."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from cli_helpers import run_sql
from conftest import FAIL_RULE, Make, config_with
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.notify.appends import WITHHELD
from kei.app.notify.follower import RuleFollower
from kei.app.notify.runner import Runner
from kei.domain.events import AgentFailed, AgentForked, NotifyRequested
from kei.errors import VerificationError


def fail_agents(ledger: Ledger, first: int, n: int) -> None:
    for i in range(first, first + n):
        ledger.append([NewEvent(f"agent/a{i}", AgentForked(agent_id=f"a{i}", branch="b"), 0),
                       NewEvent(f"agent/a{i}", AgentFailed(agent_id=f"a{i}", reason="boom"), 1)])  # fmt: skip


def requests(ledger: Ledger) -> list[NotifyRequested]:
    found = [e.payload() for e in ledger.read() if e.type == "notify.requested"]
    return [p for p in found if isinstance(p, NotifyRequested)]


def test_history_before_the_first_run_is_not_notified_unless_asked(
    ledger: Ledger, make_service: Make
) -> None:
    fail_agents(ledger, 0, 3)
    service = make_service(config_with(FAIL_RULE))
    runner = Runner(service)
    runner.follower.open(service.clock())
    fail_agents(ledger, 3, 2)
    assert len(runner.follower.step()) == 2
    assert sorted(r.subject for r in requests(ledger)) == ["Agent a3 failed", "Agent a4 failed"]
    replay = RuleFollower(ledger, service.models, service.config.rules, service.kinds, name="all")
    replay.open(service.clock(), from_start=True)
    assert len(replay.step()) == 3  # the history; the two already requested are not again
    assert len(requests(ledger)) == 5


def test_replays_and_restarts_never_request_twice(ledger: Ledger, make_service: Make) -> None:
    service = make_service(config_with(FAIL_RULE, {**FAIL_RULE, "id": "second"}))
    follower = RuleFollower(ledger, service.models, service.config.rules, service.kinds)
    follower.open(service.clock(), from_start=True)
    fail_agents(ledger, 0, 4)
    assert len(follower.step()) == 8  # two rules, four failures
    for name in ("replay-1", "replay-2"):  # a fresh cursor reads everything again
        again = RuleFollower(ledger, service.models, service.config.rules, service.kinds, name=name)
        again.open(service.clock(), from_start=True)
        assert len(again.step()) == 0
    restarted = make_service(config_with(FAIL_RULE, {**FAIL_RULE, "id": "second"}))
    restarted_runner = Runner(restarted)
    restarted_runner.follower.open(restarted.clock())
    assert len(restarted_runner.follower.step()) == 0
    ids = [r.notification_id for r in requests(ledger)]
    assert len(ids) == len(set(ids)) == 8


def test_two_followers_racing_request_each_trigger_once(
    ledger: Ledger, store_url: str, make_ledger: Callable[..., Ledger], make_service: Make
) -> None:
    fail_agents(ledger, 0, 60)
    followers = []
    for name in ("a", "b", "c"):
        own = make_service(config_with(FAIL_RULE), target=make_ledger(store_url))
        f = RuleFollower(own.ledger, own.models, own.config.rules, own.kinds, name=name)
        f.open(own.clock(), from_start=True)
        followers.append(f)
    counts: list[int] = []
    errors: list[BaseException] = []

    def follow(f: RuleFollower) -> None:
        try:
            counts.append(len(f.step()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=follow, args=(f,)) for f in followers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == 60
    ids = [r.notification_id for r in requests(ledger)]
    assert len(ids) == len(set(ids)) == 60
    assert ledger.verify().ok


def test_a_secret_in_a_template_is_withheld_not_signed(ledger: Ledger, make_service: Make) -> None:
    secret = "xoxb-1234567890-abcdefghijklmnop"
    rule = {**FAIL_RULE, "template": {"subject": f"token {secret} {{agent_id}}"}}
    service = make_service(config_with(rule))
    follower = RuleFollower(ledger, service.models, service.config.rules, service.kinds)
    follower.open(service.clock(), from_start=True)
    fail_agents(ledger, 0, 2)
    assert len(follower.step()) == 2
    assert [r.subject for r in requests(ledger)] == [WITHHELD, WITHHELD]
    assert all(secret not in str(e.payload_data()) for e in ledger.read())


def test_a_break_stops_the_follower_at_the_break(
    ledger: Ledger, store_url: str, make_service: Make
) -> None:
    service = make_service(config_with(FAIL_RULE))
    runner = Runner(service)
    runner.follower.open(service.clock())
    fail_agents(ledger, 0, 2)
    position = max(e.position for e in ledger.read())
    run_sql(store_url, "UPDATE kei_chain SET hash = ? WHERE position = ?",
            (b"\x00" * 32, position))  # fmt: skip
    with pytest.raises(VerificationError, match="notify rule follower stopped at position"):
        runner.follower.step()
    assert runner.turn() is False  # the loop logs it and goes on
    assert runner.report.errors >= 1
    assert len(requests(ledger)) == 1  # the first failure, before the break
