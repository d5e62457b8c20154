"""Real notifier processes, killed and raced (``delivery_fakes.py`` runs one).

- SIGKILL while the provider holds the request: after a restart the provider's count
  of received requests equals the log's count of claims (``notify.attempted``); a chat
  channel sent once more and its second claim says ``after_in_doubt`` (the possible
  duplicate is in the log), an SMS channel sent nothing more (``abandoned``, in doubt).
- SIGTERM: the sends in flight are finished and recorded; no claim is left open.
- Two notifier processes at once: each notification is received exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from delivery_fakes import FakeProvider

from conftest import Make
from kei.app.ledger.ledger import Ledger
from kei.domain.events import NotifyAttempted
from kei.domain.log.keys import SigningKey

pytestmark = pytest.mark.slow
CHILD = str(Path(__file__).with_name("delivery_fakes.py"))
WAIT_S = 30.0


def start(
    url: str, key: SigningKey, provider: FakeProvider, **options: Any
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, CHILD, url, key.seed.hex(), provider.url, json.dumps(options)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    return out


def claims(ledger: Ledger) -> list[NotifyAttempted]:
    found = [e.payload() for e in ledger.read() if e.type == "notify.attempted"]
    return [p for p in found if isinstance(p, NotifyAttempted)]


def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize(("kind", "received", "end"), [("slack", 2, "delivered"),
                                                        ("sms", 1, "abandoned")])  # fmt: skip
def test_sigkill_while_the_provider_holds_the_request(
    ledger: Ledger, store_url: str, key: SigningKey, provider: FakeProvider, make_service: Make,
    kind: str, received: int, end: str,
) -> None:  # fmt: skip
    from delivery_fakes import PostChannel

    channel = PostChannel("chat", provider.url, kind=kind)
    service = make_service(channels={"chat": channel})
    nid = service.send("chat", "held", severity="error", queue=True).notification_id
    provider.script.append("hold")
    proc = start(store_url, key, provider, kind=kind)
    assert provider.held.wait(WAIT_S)
    proc.send_signal(signal.SIGKILL)
    proc.wait(WAIT_S)
    provider.release.set()
    assert service.show(nid).state.state == "claimed"  # the claim, in doubt, is in the log
    finish(start(store_url, key, provider, kind=kind, once=True))
    state = service.show(nid).state
    found = claims(ledger)
    assert (state.state, provider.count, len(found)) == (end, received, received)
    assert [c.after_in_doubt for c in found] == [False, True][:received]
    assert state.possible_duplicates == received - 1
    if end == "abandoned":
        assert state.end_reason == "in_doubt"
    channel.close()


def test_sigterm_finishes_the_send_in_flight(
    ledger: Ledger, store_url: str, key: SigningKey, provider: FakeProvider, make_service: Make
) -> None:
    service = make_service()
    ids = [service.send("chat", f"n{i}", queue=True).notification_id for i in range(3)]
    provider.script.append("hold")
    proc = start(store_url, key, provider)
    assert provider.held.wait(WAIT_S)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    provider.release.set()
    assert finish(proc).startswith("done")
    states = [service.show(i).state for i in ids]
    assert "claimed" not in {s.state for s in states}  # no claim left open
    assert len(claims(ledger)) == provider.count >= 1
    assert [s.state for s in states].count("delivered") == provider.count


def test_two_notifier_processes_send_each_notification_once(
    ledger: Ledger, store_url: str, key: SigningKey, provider: FakeProvider, make_service: Make
) -> None:
    service = make_service()
    ids = [service.send("chat", f"n{i}", queue=True).notification_id for i in range(60)]
    small = {"config": {"notifier": {"senders": 3, "poll_s": 0.05}}}
    procs = [start(store_url, key, provider, **small) for _ in range(2)]
    until(lambda: provider.count >= 60)
    until(lambda: {service.show(i).state.state for i in ids} == {"delivered"})
    for p in procs:
        p.send_signal(signal.SIGTERM)
    outs = [finish(p) for p in procs]
    sent = [int(o.split()[-1]) for o in outs]
    assert sorted(provider.subjects()) == sorted(f"n{i}" for i in range(60))
    assert sum(sent) == len(claims(ledger)) == provider.count == 60
    assert not any(c.after_in_doubt for c in claims(ledger))
