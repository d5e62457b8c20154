"""Network modes as events: what a tunnel was asked to be, what kei did, what it saw.

One stream per tunnel, ``net/<mode>/<name>`` (``wireguard``, ``ipsec`` or ``openvpn``,
and the tunnel's name in ``net.toml``). ``net.mode.desired`` is the intent (``kei net
up|down``), appended at the stream's version as read. A reconciler claims each action
by appending ``net.mode.attempted`` at the stream's version (two reconcilers cannot
both claim one attempt), acts, and records the outcome: ``net.mode.configured``,
``net.mode.configure_failed`` or ``net.mode.torn_down``. While a tunnel is up it
records its peers: ``net.peer.appeared`` once per peer, ``net.peer.observed`` only when
the counters moved by more than a threshold or every few minutes (bounded volume), and
``net.peer.disappeared``.

Keys, pre-shared keys and passwords never enter these events: the settings name key
files, and only ``config_sha256`` (the effective configuration with every secret
replaced by its digest) is signed. A peer is named by what it shows the world: its
WireGuard public key, its OpenVPN common name or its IKE identity. ``stderr_tail`` is
free text the leak matrix scans before signing.
"""

from __future__ import annotations

from typing import Final, Literal

from kei.domain.events.payload import Payload

NET_STREAM_PREFIX: Final = "net/"
MODES: Final = ("wireguard", "ipsec", "openvpn")
NET_TYPES: Final = frozenset({
    "net.mode.desired", "net.mode.attempted", "net.mode.configured",
    "net.mode.configure_failed", "net.mode.torn_down", "net.mode.drifted", "net.peer.appeared",
    "net.peer.observed", "net.peer.disappeared",
})  # fmt: skip
"""The type names, registered in ``registry.py``."""

Desired = Literal["up", "down"]
Action = Literal["up", "down"]
GoneReason = Literal["gone", "torn_down"]
Observed = Literal["down"]


def net_stream(mode: str, name: str) -> str:
    return f"{NET_STREAM_PREFIX}{mode}/{name}"


class NetModeDesired(Payload, frozen=True, kw_only=True):
    """The intent: tunnel ``name`` of ``mode`` should be ``state``, as configured now.
    ``config_sha256``: the effective configuration, secrets as digests (up only; "" for
    down). ``allowed_ports``: the ports the tunnel accepts peers on."""

    mode: str
    name: str
    state: Desired
    config_sha256: str = ""
    is_public: bool = False
    allowed_ports: tuple[int, ...] = ()


class _OnAttempt(Payload, frozen=True, kw_only=True):
    """What every claim and outcome names first: the intent it serves (the version of its
    ``net.mode.desired``) and the attempt (1, 2, ... per intent)."""

    desired_version: int
    attempt: int


class NetModeAttempted(_OnAttempt, frozen=True, kw_only=True):
    """A claim: ``reconciler`` (``host:pid:start:machine``, as a notifier names itself)
    takes ``action`` now. Appended at the stream's version as the reconciler read it, so
    of two reconcilers that read the same state only one claims; the outcome follows."""

    action: Action
    reconciler: str


class NetModeConfigured(_OnAttempt, frozen=True, kw_only=True):
    """The tunnel came up with the configuration of digest ``config_sha256`` (its command,
    if one ran, exited 0)."""

    config_sha256: str
    backend_version: str | None = None


class NetModeConfigureFailed(_OnAttempt, frozen=True, kw_only=True):
    """``action`` failed: the command's ``exit_code`` (None: no process ran, or it did
    not end in time) and the end of its stderr, leak-scanned. ``not_before_us``: the
    earliest next attempt (None: no more, until the intent changes)."""

    action: Action
    exit_code: int | None = None
    stderr_tail: str = ""
    not_before_us: int | None = None


class NetModeTornDown(_OnAttempt, frozen=True, kw_only=True):
    """The tunnel was taken down (or was already down)."""

    exit_code: int | None = None


class NetModeDrifted(Payload, frozen=True, kw_only=True):
    """The log says the tunnel is up, the backend says it is not (its interface is gone):
    a reconciler saw it and will bring it up again, with a fresh budget of attempts."""

    desired_version: int
    observed: Observed


class NetPeerAppeared(Payload, frozen=True, kw_only=True):
    """A peer the backend reports for the first time since the tunnel came up."""

    peer_id: str
    endpoint: str | None = None
    addresses: tuple[str, ...] = ()


class NetPeerObserved(Payload, frozen=True, kw_only=True):
    """A peer's counters: last handshake or packet (Unix µs, None: never or unknown)
    and bytes in and out since the tunnel came up."""

    peer_id: str
    endpoint: str | None = None
    last_seen_us: int | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0


class NetPeerDisappeared(Payload, frozen=True, kw_only=True):
    """A peer the backend no longer reports (``gone``) or whose tunnel was taken down."""

    peer_id: str
    reason: GoneReason
