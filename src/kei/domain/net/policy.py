"""What a reconciler does next with one tunnel, and what it records after.

Pure: the caller passes the time and whether the open claim's reconciler process is
known to be gone, so every decision can be replayed in a test.

- ``decide``: compare the intent with the folded state. An ``up`` intent whose
  configuration is already up (same ``config_sha256``) needs nothing; otherwise the
  reconciler claims attempt ``attempts + 1``. A failed attempt is retried after a
  doubling wait, at most ``max_attempts`` times per intent; a claim without an outcome
  is waited for until its lease ends or its process is gone, then retried (bringing a
  tunnel up or down again is safe: the adapters make both idempotent).
- ``drifted``: a tunnel the log says is up but the backend has lost is recorded as
  such (``net.mode.drifted``), and ``decide`` brings it up again.
- ``after_action``: the outcome event of an attempt, with the peers' ``disappeared``
  when a tunnel was taken down.
- ``observe``: the peer events a fresh observation calls for: ``appeared`` (then a
  first ``observed``), ``observed`` only when the endpoint changed, the counters moved
  by at least ``bytes_threshold``, went backwards, or anything moved and
  ``observe_every_s`` passed since the last record; ``disappeared`` for peers no longer
  reported. So a quiet tunnel appends nothing, and a busy one a bounded number of
  events per peer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from msgspec import Struct

from kei.domain.events import net as ev
from kei.domain.events.payload import Payload
from kei.domain.net.state import PeerSeen, TunnelState
from kei.domain.net.values import ActionResult, ObservedPeer

TAIL_CHARS: Final = 2000


class NetPolicy(Struct, frozen=True, kw_only=True):
    """The ``[reconciler]`` table of net.toml (seconds and bytes)."""

    poll_s: float = 5.0
    observe_every_s: float = 300.0
    bytes_threshold: int = 1 << 20
    retry_s: float = 5.0
    max_attempts: int = 5
    lease_s: float = 120.0


class Act(Struct, frozen=True):
    """Claim and run ``action`` as attempt ``attempt``."""

    action: ev.Action
    attempt: int


class Wait(Struct, frozen=True):
    """Nothing now; look again at ``until_us``."""

    until_us: int


Decision = Act | Wait | None


def decide(state: TunnelState, policy: NetPolicy, now_us: int, *, claim_gone: bool) -> Decision:
    """What to do now; see the module docstring."""
    want = state.desired
    if want is None:
        return None
    if state.claim is not None:
        lease_end = state.claim.claimed_us + int(policy.lease_s * 1e6)
        if not claim_gone and now_us < lease_end:
            return Wait(lease_end)
    elif state.failed:
        if state.not_before_us is None:
            return None
        if now_us < state.not_before_us:
            return Wait(state.not_before_us)
    elif satisfied(state):
        return None
    if state.attempts - state.budget_from >= policy.max_attempts:
        return None
    return Act(want.state, state.attempts + 1)


def drifted(state: TunnelState, backend_up: bool | None) -> list[Payload]:
    """The events that record a tunnel the log says is up and the backend says is not
    (``backend_up`` False; None: the backend cannot say, and nothing is recorded): each
    present peer gone, then ``net.mode.drifted``. ``decide`` then brings it up again."""
    if backend_up is not False or not state.up or state.claim is not None:
        return []
    gone: list[Payload] = [ev.NetPeerDisappeared(peer_id=p, reason="gone")
                           for p in sorted(state.peers)]  # fmt: skip
    return [*gone, ev.NetModeDrifted(desired_version=state.desired_version, observed="down")]


def satisfied(state: TunnelState) -> bool:
    """Whether the tunnel is as its intent asks (up with that configuration, or down)."""
    want = state.desired
    if want is None or want.state == "down":
        return not state.up
    return state.up and state.config_sha256 == want.config_sha256


def after_action(
    state: TunnelState, act: Act, result: ActionResult, policy: NetPolicy, now_us: int
) -> list[Payload]:
    """The events that record ``result`` of ``act`` (claimed on ``state``)."""
    v = state.desired_version
    if not result.ok:
        wait_us = int(policy.retry_s * 1e6) << min(act.attempt - 1, 20)
        again = None if act.attempt >= policy.max_attempts else now_us + wait_us
        return [ev.NetModeConfigureFailed(
            desired_version=v, action=act.action, attempt=act.attempt,
            exit_code=result.exit_code, stderr_tail=tail(result.stderr_tail), not_before_us=again,
        )]  # fmt: skip
    if act.action == "up":
        want = state.desired
        digest = want.config_sha256 if want is not None else ""
        return [ev.NetModeConfigured(desired_version=v, attempt=act.attempt, config_sha256=digest,
                                     backend_version=result.backend_version)]  # fmt: skip
    gone: list[Payload] = [ev.NetPeerDisappeared(peer_id=p, reason="torn_down")
                           for p in sorted(state.peers)]  # fmt: skip
    return [*gone, ev.NetModeTornDown(desired_version=v, attempt=act.attempt,
                                      exit_code=result.exit_code)]  # fmt: skip


def tail(text: str) -> str:
    """The last ``TAIL_CHARS`` characters, NUL removed (free text must hold none)."""
    return text.replace("\x00", "")[-TAIL_CHARS:]


def observe(
    known: dict[str, PeerSeen], seen: Sequence[ObservedPeer], policy: NetPolicy, now_us: int
) -> list[Payload]:
    """The peer events this observation calls for; see the module docstring."""
    out: list[Payload] = []
    every_us = int(policy.observe_every_s * 1e6)
    current = {p.peer_id: p for p in seen}
    for pid in sorted(current):
        p = current[pid]
        old = known.get(pid)
        if old is None:
            out.append(ev.NetPeerAppeared(peer_id=pid, endpoint=p.endpoint, addresses=p.addresses))
        elif not _worth(old, p, policy.bytes_threshold, now_us - old.recorded_us >= every_us):
            continue
        out.append(ev.NetPeerObserved(peer_id=pid, endpoint=p.endpoint, last_seen_us=p.last_seen_us,
                                      rx_bytes=p.rx_bytes, tx_bytes=p.tx_bytes))  # fmt: skip
    out += [ev.NetPeerDisappeared(peer_id=pid, reason="gone")
            for pid in sorted(set(known) - set(current))]  # fmt: skip
    return out


def _worth(old: PeerSeen, new: ObservedPeer, threshold: int, stale: bool) -> bool:
    rx, tx = new.rx_bytes - old.rx_bytes, new.tx_bytes - old.tx_bytes
    if new.endpoint != old.endpoint or rx < 0 or tx < 0 or rx + tx >= threshold:
        return True
    return stale and (rx + tx > 0 or new.last_seen_us != old.last_seen_us)
