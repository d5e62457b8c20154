"""The reconciler: compare each tunnel's intent with what the log and the backend say,
act, record. The follower shape of ``kei notify`` (docs/architecture.md): the intent is
an event, the claim is an event appended at the stream's version, then the effect, then
the outcome.

For one tunnel, ``reconcile`` reads its stream *checked* (``read_stream_checked``:
hashes, signatures, versions) and folds it (``kei.domain.net.state``), asks the domain
what to do (``kei.domain.net.policy.decide``) and, to act, appends ``net.mode.attempted``
at the version it folded: if another reconciler appended first, the log refuses the
claim and this one does nothing. Then it runs ``configure`` or ``teardown`` and appends
the outcome at the stream's end (it names its attempt, so a race cannot refuse it).
While the tunnel is up it asks the backend for its peers and appends what
``policy.observe`` calls for. A claim whose process is gone (same machine) or whose
lease passed is in doubt and is retried: bringing a tunnel up or down again is safe.

A stderr tail that matches a leak-matrix ``block`` rule is withheld, not dropped with
its event: the outcome always lands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from msgspec.structs import replace

from kei.app.ledger.appending import NewEvent
from kei.app.notify.appends import WITHHELD
from kei.app.notify.identity import claim_gone, notifier_id
from kei.domain.events import net as ev
from kei.domain.events.payload import Payload
from kei.domain.net.policy import (
    Act,
    NetPolicy,
    Wait,
    after_action,
    decide,
    drifted,
    observe,
)
from kei.domain.net.state import TunnelState, fold_stream
from kei.domain.net.values import ActionResult
from kei.errors import ConcurrencyError, LeakBlockedError, NetError

if TYPE_CHECKING:
    from kei.adapters.net.mode import NetworkMode
    from kei.app.ledger.ledger import Ledger

log = logging.getLogger(__name__)
MOST_STEPS = 4


def now_us() -> int:
    return time.time_ns() // 1000


def stream_of(mode: NetworkMode) -> str:
    return ev.net_stream(mode.mode_name, mode.name)


@dataclass
class Reconciler:
    """Reconciles ``modes`` (by tunnel name) with ``policy``; ``stop`` ends a turn
    between tunnels; ``me`` names this process in its claims."""

    ledger: Ledger
    modes: Mapping[str, NetworkMode]
    policy: NetPolicy
    clock: Callable[[], int] = now_us
    stop: threading.Event = field(default_factory=threading.Event)
    me: str = field(default_factory=notifier_id)
    errors: int = 0

    def state(self, mode: NetworkMode) -> TunnelState:
        rows = self.ledger.read_stream_checked(stream_of(mode))
        return fold_stream([(e.payload(), e.version, e.timestamp_us) for e in rows])

    def turn(self, names: Sequence[str] | None = None) -> int | None:
        """Reconcile every tunnel (or ``names``) once; the earliest time something is
        due again (None: only the poll)."""
        wakes = []
        for name in names or sorted(self.modes):
            if self.stop.is_set():
                break
            try:
                wake = self.reconcile(self.modes[name])
            except NetError as exc:
                self.errors += 1
                log.error("net %s: %s", name, exc)
                continue
            if wake is not None:
                wakes.append(wake)
        return min(wakes, default=None)

    def reconcile(self, mode: NetworkMode) -> int | None:
        """Act on one tunnel until its intent is met or it must wait; then observe it."""
        self.check_drift(mode)
        for _ in range(MOST_STEPS):
            state = self.state(mode)
            gone = state.claim is not None and claim_gone(state.claim.reconciler)
            decision = decide(state, self.policy, self.clock(), claim_gone=gone)
            if not isinstance(decision, Act):
                break
            if not self._act(mode, state, decision):
                break
        else:
            state = self.state(mode)
            decision = None
        if state.up and state.claim is None:
            try:
                self.observe(mode, state)
            except NetError as exc:
                self.errors += 1
                log.warning("net %s: peers not observed: %s", mode.name, exc)
        return decision.until_us if isinstance(decision, Wait) else None

    def check_drift(self, mode: NetworkMode) -> list[Payload]:
        """Record a tunnel the log says is up and the backend has lost; a mode whose
        ``is_up()`` answers ``None`` cannot tell, and nothing is checked."""
        state = self.state(mode)
        if not state.up or state.claim is not None:
            return []
        found = drifted(state, mode.is_up())
        if found:
            log.warning("net %s: the tunnel is gone from the backend; bringing it up again",
                        mode.name)  # fmt: skip
            try:
                self.ledger.append([NewEvent(stream_of(mode), p, state.version + i)
                                    for i, p in enumerate(found)])  # fmt: skip
            except ConcurrencyError:
                return []  # the stream moved: another reconciler saw it first
        return found

    def _act(self, mode: NetworkMode, state: TunnelState, act: Act) -> bool:
        stream = stream_of(mode)
        claim = ev.NetModeAttempted(desired_version=state.desired_version, action=act.action,
                                    attempt=act.attempt, reconciler=self.me)  # fmt: skip
        try:
            self.ledger.append([NewEvent(stream, claim, state.version)])
        except ConcurrencyError:
            log.debug("%s moved; another reconciler acts", stream)
            return False
        result = _effect(mode, act)
        after = after_action(state, act, result, self.policy, self.clock())
        append_outcome(self.ledger, stream, after)
        return result.ok

    def observe(self, mode: NetworkMode, state: TunnelState) -> list[Payload]:
        """Ask the backend for the peers; append what changed (NetError if it cannot say)."""
        found = observe(state.peers, mode.peers(), self.policy, self.clock())
        if found:
            self.ledger.append([NewEvent(stream_of(mode), p) for p in found])
        return found


def _effect(mode: NetworkMode, act: Act) -> ActionResult:
    """``configure`` or ``teardown``; an adapter that raises counts as a failure."""
    try:
        return mode.configure() if act.action == "up" else mode.teardown()
    except Exception as exc:  # a bug or an unexpected OS error: recorded, not raised
        log.warning("net %s: %s raised %s", mode.name, act.action, type(exc).__name__)
        return ActionResult(ok=False, stderr_tail=f"the adapter raised {type(exc).__name__}")


def append_outcome(ledger: Ledger, stream: str, payloads: Sequence[Payload]) -> None:
    """Append at the stream's end; on a leak block, again with stderr withheld."""
    try:
        ledger.append([NewEvent(stream, p) for p in payloads])
        return
    except LeakBlockedError:
        log.warning("%s: stderr withheld (leak rule)", stream)
    ledger.append([NewEvent(stream, _withheld(p)) for p in payloads])


def _withheld(p: Payload) -> Payload:
    if isinstance(p, ev.NetModeConfigureFailed):
        return replace(p, stderr_tail=WITHHELD)
    return p
