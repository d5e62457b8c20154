"""One tunnel's state, folded from its stream ``net/<mode>/<name>``.

The reconciler decides from this fold of the stream's checked rows, and the
``net_tunnels``/``net_peers`` read models keep the same fold, so ``kei net status``
and the reconciler cannot disagree on what a stream means.

What the fold keeps: the latest intent (``desired``, at ``desired_version``); the
attempts made for it (a new intent starts again at 0); an open claim (an attempt
without an outcome: in flight, or in doubt once its lease passed or its reconciler is
gone); whether the tunnel is ``up`` (configured and not torn down since) and with which
``config_sha256`` (a ``drifted`` tunnel is down, and its intent gets a fresh budget
of attempts); when a failed attempt may be retried (``not_before_us``; None after
a failure: not again for this intent); and the peers present now, each with its last
recorded counters and when they were recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from msgspec import Struct
from msgspec.structs import replace

from kei.domain.events import net as ev
from kei.domain.events.payload import Payload

Phase = Literal["idle", "claimed", "up", "down", "failed"]


class Claim(Struct, frozen=True, kw_only=True):
    """An attempt without an outcome yet, and when it was made (signed time)."""

    action: ev.Action
    attempt: int
    reconciler: str
    claimed_us: int


class PeerSeen(Struct, frozen=True, kw_only=True):
    """A present peer as last recorded."""

    endpoint: str | None = None
    addresses: tuple[str, ...] = ()
    last_seen_us: int | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0
    recorded_us: int = 0


class TunnelState(Struct, frozen=True, kw_only=True):
    """The fold of one tunnel's stream; see the module docstring."""

    version: int = 0
    desired: ev.NetModeDesired | None = None
    desired_version: int = 0
    attempts: int = 0
    budget_from: int = 0  # attempts before the last drift: they do not count again
    claim: Claim | None = None
    up: bool = False
    config_sha256: str = ""
    failed: bool = False
    not_before_us: int | None = None
    last_exit_code: int | None = None
    last_error: str = ""
    changed_us: int = 0
    peers: dict[str, PeerSeen] = {}

    @property
    def phase(self) -> Phase:
        """What people are told: ``claimed``, ``failed``, ``up``, ``down`` or ``idle``."""
        if self.claim is not None:
            return "claimed"
        if self.failed:
            return "failed"
        if self.up:
            return "up"
        return "idle" if self.desired is None else "down"


def fold(state: TunnelState, payload: Payload, version: int, ts_us: int) -> TunnelState:
    """``state`` after one more event of its stream."""
    s = replace(state, version=version)
    if isinstance(payload, ev.NetModeDesired):
        return replace(s, desired=payload, desired_version=version, attempts=0, budget_from=0,
                       claim=None, failed=False, not_before_us=None)  # fmt: skip
    if isinstance(payload, ev.NetModeAttempted):
        if payload.desired_version != s.desired_version:
            return s
        claim = Claim(action=payload.action, attempt=payload.attempt,
                      reconciler=payload.reconciler, claimed_us=ts_us)  # fmt: skip
        return replace(s, claim=claim, attempts=max(s.attempts, payload.attempt))
    if isinstance(payload, ev.NetModeConfigured):
        return replace(s, claim=None, up=True, failed=False, config_sha256=payload.config_sha256,
                       last_exit_code=None, last_error="", changed_us=ts_us, not_before_us=None)  # fmt: skip
    if isinstance(payload, ev.NetModeConfigureFailed):
        current = payload.desired_version == s.desired_version
        return replace(s, claim=None if current else s.claim, failed=current,
                       not_before_us=payload.not_before_us if current else s.not_before_us,
                       last_exit_code=payload.exit_code, last_error=payload.stderr_tail,
                       changed_us=ts_us)  # fmt: skip
    if isinstance(payload, ev.NetModeDrifted):
        return replace(s, up=False, config_sha256="", budget_from=s.attempts, changed_us=ts_us,
                       peers={})  # fmt: skip
    if isinstance(payload, ev.NetModeTornDown):
        return replace(s, claim=None, up=False, failed=False, config_sha256="",
                       last_exit_code=payload.exit_code, last_error="", changed_us=ts_us,
                       peers={})  # fmt: skip
    return _peer(s, payload, ts_us)


def _peer(s: TunnelState, payload: Payload, ts_us: int) -> TunnelState:
    if isinstance(payload, ev.NetPeerAppeared):
        seen = PeerSeen(endpoint=payload.endpoint, addresses=payload.addresses, recorded_us=ts_us)
        return replace(s, peers={**s.peers, payload.peer_id: seen})
    if isinstance(payload, ev.NetPeerObserved):
        old = s.peers.get(payload.peer_id, PeerSeen())
        seen = replace(old, endpoint=payload.endpoint, last_seen_us=payload.last_seen_us,
                       rx_bytes=payload.rx_bytes, tx_bytes=payload.tx_bytes,
                       recorded_us=ts_us)  # fmt: skip
        return replace(s, peers={**s.peers, payload.peer_id: seen})
    if isinstance(payload, ev.NetPeerDisappeared):
        return replace(s, peers={k: v for k, v in s.peers.items() if k != payload.peer_id})
    return s


def fold_stream(rows: Iterable[tuple[Payload, int, int]]) -> TunnelState:
    """The state of a stream from its ``(payload, version, timestamp_us)`` rows."""
    state = TunnelState()
    for payload, version, ts_us in rows:
        state = fold(state, payload, version, ts_us)
    return state
