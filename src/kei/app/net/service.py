"""``NetService``: what ``kei net`` does, over one ledger and the tunnels of net.toml.

Writes decide from checked streams: ``intend`` appends ``net.mode.desired`` at the
stream's version as read (an intent equal to the current one, already met, appends
nothing) and, unless ``queue``, reconciles that tunnel at once. ``run`` is the loop of
``kei net run``: every tunnel reconciled each ``poll_s``, or sooner when a retry or a
lease end is due. Reads: ``status`` folds each stream checked; ``peers`` catches the
``net_peers`` read model up; ``history`` is a stream's checked events. Nothing prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from kei.adapters.net.mode import NetworkMode
from kei.adapters.net.settings import NetSettings, names
from kei.app.ledger.appending import NewEvent
from kei.app.net.reconciler import Reconciler, now_us, stream_of
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.events import net as ev
from kei.domain.net.policy import satisfied
from kei.domain.net.state import TunnelState
from kei.projections.net_peers import NetPeers

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.recorded import RecordedEvent


class Tunnel(Struct, frozen=True):
    """A configured tunnel and its folded state."""

    name: str
    mode: str
    stream: str
    state: TunnelState


class NetService(ReadModelService):
    """``kei net`` over ``ledger``; ``build(name)`` makes a tunnel's adapter."""

    def __init__(
        self,
        ledger: Ledger,
        settings: NetSettings,
        build: Callable[[str], NetworkMode],
        *,
        seal_key: bytes | None = None,
        clock: Callable[[], int] = now_us,
        stop: threading.Event | None = None,
    ) -> None:
        self.peer_rows = NetPeers()
        super().__init__(ReadModels(ledger, self.peer_rows, name="net", seal_key=seal_key))
        self.settings, self._build, self.clock = settings, build, clock
        self._modes: dict[str, NetworkMode] = {}
        self.reconciler = Reconciler(ledger, self._modes, settings.policy, clock,
                                     stop or threading.Event())  # fmt: skip

    def mode(self, name: str) -> NetworkMode:
        names(self.settings, [name])
        if name not in self._modes:
            self._modes[name] = self._build(name)
        return self._modes[name]

    @property
    def modes(self) -> Mapping[str, NetworkMode]:
        for name in names(self.settings):
            self.mode(name)
        return self._modes

    # -- writes ------------------------------------------------------------------------

    def intend(self, name: str, want: ev.Desired, *, queue: bool = False) -> Tunnel:
        """Record that tunnel ``name`` should be ``want`` and, unless ``queue``, act now."""
        mode = self.mode(name)
        digest = mode.config_sha256() if want == "up" else ""
        desired = ev.NetModeDesired(
            mode=mode.mode_name, name=name, state=want, config_sha256=digest,
            is_public=mode.is_public, allowed_ports=mode.allowed_ports,
        )  # fmt: skip
        state = self.reconciler.state(mode)
        if state.desired != desired or not satisfied(state):
            self.ledger.append([NewEvent(stream_of(mode), desired, state.version)])
        if not queue:
            self.reconciler.reconcile(mode)
        return self.tunnel(name)

    def run(self, *, once: bool = False) -> tuple[int, int]:
        """Reconcile every tunnel until ``stop`` (``once``: one turn); kei errors of one
        tunnel are logged and counted, the others go on. Returns (turns, errors)."""
        recon, stop = self.reconciler, self.reconciler.stop
        recon.modes = self.modes
        poll_s, turns = self.settings.policy.poll_s, 0
        while not stop.is_set():
            wake = recon.turn()
            turns += 1
            if once:
                break
            wait_s = poll_s if wake is None else min(poll_s, (wake - self.clock()) / 1e6)
            stop.wait(max(0.0, wait_s))
        return turns, recon.errors

    # -- reads -------------------------------------------------------------------------

    def tunnel(self, name: str) -> Tunnel:
        mode = self.mode(name)
        return Tunnel(name, mode.mode_name, stream_of(mode), self.reconciler.state(mode))

    def status(self, wanted: Sequence[str] = ()) -> list[Tunnel]:
        return [self.tunnel(n) for n in names(self.settings, wanted)]

    def peers(self, name: str | None = None, *, gone: bool = False) -> list[dict[str, Any]]:
        """Peers from the caught-up read model (present ones unless ``gone``)."""
        self.models.catch_up([self.peer_rows.name])
        t = self.peer_rows.table
        query = t.select().order_by(t.c.stream, t.c.peer_id)
        if name is not None:
            query = query.where(t.c.stream == self.tunnel(name).stream)
        if not gone:
            query = query.where(t.c.present == 1)
        return self.models.rows(query)

    def history(self, name: str) -> list[RecordedEvent]:
        return self.ledger.read_stream_checked(self.tunnel(name).stream)
