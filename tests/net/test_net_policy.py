"""The reconciler's decisions, pure: observation volume stays bounded, failures back off
and stop, a met intent needs nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kei.domain.events import net as ev
from kei.domain.events.payload import Payload
from kei.domain.net.policy import Act, NetPolicy, Wait, after_action, decide, observe
from kei.domain.net.state import TunnelState, fold, fold_stream
from kei.domain.net.values import ActionResult, ObservedPeer

PEER = "p" * 43 + "="
POLICY = NetPolicy(observe_every_s=60, bytes_threshold=10_000, retry_s=1, max_attempts=3)
S = 1_000_000


def _desired(want: ev.Desired = "up") -> ev.NetModeDesired:
    return ev.NetModeDesired(mode="wireguard", name="home", state=want, config_sha256="c" * 64)


@given(st.lists(st.tuples(st.integers(0, 5_000), st.integers(0, 30 * S)), max_size=200))
def test_observations_are_bounded_by_time_and_bytes(steps: list[tuple[int, int]]) -> None:
    state = fold_stream([(_desired(), 1, 0)])
    now, rx, version = 0, 0, 1
    recorded = 0
    for moved, wait in steps:
        now, rx = now + wait, rx + moved
        for p in observe(state.peers, [ObservedPeer(peer_id=PEER, rx_bytes=rx)], POLICY, now):
            version += 1
            state = fold(state, p, version, now)
            recorded += isinstance(p, ev.NetPeerObserved)
    bound = 1 + now // (60 * S) + rx // 10_000 + 1
    assert recorded <= bound


def test_nothing_moves_nothing_recorded() -> None:
    seen = [ObservedPeer(peer_id=PEER, rx_bytes=5)]
    state = TunnelState()
    for i, p in enumerate(observe(state.peers, seen, POLICY, 0), start=1):
        state = fold(state, p, i, 0)
    assert observe(state.peers, seen, POLICY, 10**12) == []


def test_failures_back_off_doubling_then_stop() -> None:
    state = fold_stream([(_desired(), 1, 0)])
    waits = []
    now = 0
    for version in range(2, 20, 2):
        decision = decide(state, POLICY, now, claim_gone=False)
        if isinstance(decision, Wait):
            now = decision.until_us
            decision = decide(state, POLICY, now, claim_gone=False)
        if decision is None:
            break
        assert isinstance(decision, Act)
        claim = ev.NetModeAttempted(desired_version=1, attempt=decision.attempt, action="up",
                                    reconciler="r")  # fmt: skip
        state = fold(state, claim, version, now)
        (failed,) = after_action(state, decision, ActionResult(ok=False, exit_code=1), POLICY, now)
        assert isinstance(failed, ev.NetModeConfigureFailed)
        state = fold(state, failed, version + 1, now)
        waits.append(None if failed.not_before_us is None else failed.not_before_us - now)
    assert waits == [1 * S, 2 * S, None]


def test_a_met_intent_needs_nothing_and_a_new_one_acts() -> None:
    rows: list[tuple[Payload, int, int]] = [
        (_desired(), 1, 0),
        (ev.NetModeAttempted(desired_version=1, attempt=1, action="up", reconciler="r"), 2, 0),
        (ev.NetModeConfigured(desired_version=1, attempt=1, config_sha256="c" * 64), 3, 0),
    ]
    state = fold_stream(rows)
    assert state.phase == "up" and decide(state, POLICY, 0, claim_gone=False) is None
    state = fold(state, _desired("down"), 4, 0)
    assert decide(state, POLICY, 0, claim_gone=False) == Act("down", 1)
