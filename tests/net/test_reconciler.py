"""The reconciler over a real ledger (SQLite file or PostgreSQL) and a recording mode:
intent, claim, outcome; retries within bounds; claims refused to a second reconciler;
claims in doubt retried; peers recorded within bounds; stderr through the leak matrix."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kei.adapters.net.settings import NetSettings, Tunnel
from kei.app.ledger.appending import NewEvent
from kei.app.ledger.ledger import Ledger
from kei.app.net.reconciler import Reconciler
from kei.app.net.service import NetService
from kei.domain.events import net as ev
from kei.domain.net.policy import Act, NetPolicy
from kei.domain.net.values import ActionResult, ObservedPeer
from kei.errors import NetError

PEER = "x" * 43 + "="
AWS = "AKIAQWERTYUIOPASDFGH"


class Recording:
    """A NetworkMode that records what it was asked and answers what it is told."""

    mode_name = "wireguard"
    is_public = False
    allowed_ports = (51820,)

    def __init__(self, name: str = "home") -> None:
        self.name = name
        self.calls: list[str] = []
        self.results: list[ActionResult] = []
        self.seen: list[ObservedPeer] | NetError = []

    def config_sha256(self) -> str:
        return "c" * 64

    def is_up(self) -> bool | None:
        return None

    def configure(self) -> ActionResult:
        self.calls.append("up")
        return self.results.pop(0) if self.results else ActionResult(ok=True, exit_code=0)

    def teardown(self) -> ActionResult:
        self.calls.append("down")
        return ActionResult(ok=True, exit_code=0)

    def peers(self) -> list[ObservedPeer]:
        if isinstance(self.seen, NetError):
            raise self.seen
        return list(self.seen)


class Clock:
    """Starts at the real time (signed times are compared with it), moved by hand."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def ledger(store_url: str, make_ledger: Callable[[str], Ledger]) -> Ledger:
    return make_ledger(store_url)


@pytest.fixture
def mode() -> Recording:
    return Recording()


@pytest.fixture
def clock() -> Clock:
    return Clock()


POLICY = NetPolicy(retry_s=10, max_attempts=3, observe_every_s=60, bytes_threshold=1000)


@pytest.fixture
def service(ledger: Ledger, mode: Recording, clock: Clock, tmp_path: Path) -> Iterator[NetService]:
    settings = NetSettings(source="net.toml", base_dir=tmp_path, policy=POLICY, tunnels={
        "home": Tunnel(name="home", mode="wireguard", table={}, source="net.toml")})  # fmt: skip
    with NetService(ledger, settings, lambda _: mode, clock=clock) as svc:  # type: ignore[arg-type,return-value]
        yield svc


def _types(ledger: Ledger) -> list[str]:
    return [e.type for e in ledger.read_stream_checked("net/wireguard/home")]


def test_up_is_claimed_then_configured_and_not_repeated(service: NetService, mode: Recording,
                                                       ledger: Ledger) -> None:  # fmt: skip
    t = service.intend("home", "up")
    assert t.state.phase == "up" and mode.calls == ["up"]
    assert _types(ledger) == ["net.mode.desired", "net.mode.attempted", "net.mode.configured"]
    again = service.intend("home", "up")
    assert again.state.phase == "up" and mode.calls == ["up"]
    assert len(_types(ledger)) == 3  # the same intent, met: nothing appended


def test_a_failure_is_retried_after_its_wait_and_given_up_after_max_attempts(
    service: NetService, mode: Recording, clock: Clock, ledger: Ledger
) -> None:
    mode.results = [ActionResult(ok=False, exit_code=1, stderr_tail="no such device")] * 3
    t = service.intend("home", "up")
    assert t.state.phase == "failed" and t.state.not_before_us == clock.now + 10_000_000
    service.reconciler.turn(["home"])
    assert mode.calls == ["up"]  # not yet due
    clock.now += 10_000_000
    service.reconciler.reconcile(service.mode("home"))
    assert mode.calls == ["up", "up"]
    clock.now += 20_000_000  # doubled
    service.reconciler.reconcile(service.mode("home"))
    assert mode.calls == ["up", "up", "up"]
    state = service.tunnel("home").state
    assert state.attempts == 3 and state.not_before_us is None
    clock.now += 10**12
    service.reconciler.reconcile(service.mode("home"))
    assert mode.calls == ["up"] * 3  # given up until the intent changes
    assert _types(ledger).count("net.mode.configure_failed") == 3


def test_a_second_reconciler_cannot_claim_the_same_attempt(
    service: NetService, mode: Recording, ledger: Ledger, clock: Clock
) -> None:
    service.intend("home", "up", queue=True)
    other = Reconciler(ledger, {"home": mode}, POLICY, clock=clock)  # type: ignore[dict-item]
    stale = other.state(mode)  # type: ignore[arg-type]
    service.reconciler.reconcile(mode)  # type: ignore[arg-type]
    assert not other._act(mode, stale, Act("up", 1))  # type: ignore[arg-type]
    assert mode.calls == ["up"]


def test_a_claim_whose_process_is_gone_is_retried_at_once(
    service: NetService, mode: Recording, ledger: Ledger
) -> None:
    service.intend("home", "up", queue=True)
    dead = service.reconciler.me.replace(":", ":9999999:", 1).split(":")
    gone = ":".join([dead[0], "4194303", "-", service.reconciler.me.rsplit(":", 1)[1]])
    claim = ev.NetModeAttempted(desired_version=1, action="up", attempt=1, reconciler=gone)
    ledger.append([NewEvent("net/wireguard/home", claim, 1)])
    service.reconciler.reconcile(mode)  # type: ignore[arg-type]
    assert mode.calls == ["up"]
    attempts = [e.payload() for e in ledger.read_stream_checked("net/wireguard/home")
                if e.type == "net.mode.attempted"]  # fmt: skip
    assert [a.attempt for a in attempts] == [1, 2]  # type: ignore[attr-defined]


def test_peers_appear_are_observed_within_bounds_and_disappear(
    service: NetService, mode: Recording, clock: Clock, ledger: Ledger
) -> None:
    mode.seen = [ObservedPeer(peer_id=PEER, endpoint="10.0.0.2:51820", rx_bytes=10, tx_bytes=10)]
    service.intend("home", "up")
    assert _types(ledger)[-2:] == ["net.peer.appeared", "net.peer.observed"]
    n = len(_types(ledger))
    for step in range(5):  # small moves, not yet due: nothing recorded
        mode.seen = [ObservedPeer(peer_id=PEER, endpoint="10.0.0.2:51820", rx_bytes=20 + step,
                                  tx_bytes=10)]  # fmt: skip
        clock.now += 1_000_000
        service.reconciler.turn(["home"])
    assert len(_types(ledger)) == n
    clock.now += 60_000_000  # due: the small move is recorded once
    service.reconciler.turn(["home"])
    service.reconciler.turn(["home"])
    assert len(_types(ledger)) == n + 1
    mode.seen = [ObservedPeer(peer_id=PEER, endpoint="10.0.0.2:51820", rx_bytes=5000, tx_bytes=10)]
    service.reconciler.turn(["home"])  # past the threshold: recorded at once
    assert len(_types(ledger)) == n + 2
    rows = service.peers("home")
    assert rows[0]["rx_bytes"] == 5000 and rows[0]["present"] == 1
    mode.seen = []
    service.reconciler.turn(["home"])
    assert _types(ledger)[-1] == "net.peer.disappeared"
    assert service.peers("home") == [] and len(service.peers("home", gone=True)) == 1


def test_down_takes_the_peers_with_it(service: NetService, mode: Recording,
                                      ledger: Ledger) -> None:  # fmt: skip
    mode.seen = [ObservedPeer(peer_id=PEER)]
    service.intend("home", "up")
    t = service.intend("home", "down")
    assert t.state.phase == "down" and mode.calls == ["up", "down"]
    assert _types(ledger)[-2:] == ["net.peer.disappeared", "net.mode.torn_down"]
    assert service.peers("home") == []


def test_a_backend_that_cannot_say_does_not_stop_the_turn(
    service: NetService, mode: Recording
) -> None:
    mode.seen = NetError("wg show wg-home: exit 1: no such device")
    assert service.intend("home", "up").state.phase == "up"
    assert service.reconciler.errors == 1


def test_stderr_goes_through_the_leak_matrix(service: NetService, mode: Recording,
                                             ledger: Ledger) -> None:  # fmt: skip
    mode.results = [ActionResult(ok=False, exit_code=1, stderr_tail=f"token {AWS} refused")]
    service.intend("home", "up")
    failed = [e for e in ledger.read_stream_checked("net/wireguard/home")
              if e.type == "net.mode.configure_failed"]  # fmt: skip
    assert len(failed) == 1 and AWS not in str(failed[0].payload_data())


def test_a_tunnel_lost_by_the_backend_is_recorded_and_brought_up_again(
    service: NetService, mode: Recording, ledger: Ledger
) -> None:
    mode.seen = [ObservedPeer(peer_id=PEER)]
    mode.results = [ActionResult(ok=True)] * 9
    service.intend("home", "up")
    up: list[bool | None] = [False]
    mode.is_up = lambda: up[0]  # type: ignore[attr-defined]
    service.reconciler.turn(["home"])
    assert mode.calls == ["up", "up"]
    assert _types(ledger)[-6:] == ["net.peer.disappeared", "net.mode.drifted",
                                   "net.mode.attempted", "net.mode.configured",
                                   "net.peer.appeared", "net.peer.observed"]  # fmt: skip
    up[0] = None  # the backend cannot say: nothing is recorded
    n = len(_types(ledger))
    service.reconciler.turn(["home"])
    assert len(_types(ledger)) == n and mode.calls == ["up", "up"]


def test_drifts_get_a_fresh_budget_of_attempts(
    service: NetService, mode: Recording, ledger: Ledger
) -> None:
    service.intend("home", "up")
    mode.is_up = lambda: False  # type: ignore[attr-defined]
    for _ in range(5):  # more drifts than max_attempts (3): each is brought up again
        service.reconciler.turn(["home"])
    assert mode.calls == ["up"] * 6
    attempts = [e.payload().attempt for e in ledger.read_stream_checked("net/wireguard/home")  # type: ignore[attr-defined]
                if e.type == "net.mode.attempted"]  # fmt: skip
    assert attempts == [1, 2, 3, 4, 5, 6]
