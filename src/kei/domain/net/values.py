"""The values a network mode hands the reconciler: one peer as observed, and the outcome
of a command that changed the tunnel.

Why these shapes: upstream's ``PeerStatus`` lost each peer's identity (WireGuard public
key, OpenVPN common name, IKE identity) and made "last seen" up; here identity is the key
and an unknown time is ``None``. No field ever holds a private key, a pre-shared key or a
password: only what a peer shows the world.
"""

from __future__ import annotations

from msgspec import Struct

__all__ = ["ActionResult", "ObservedPeer"]


class ObservedPeer(Struct, frozen=True, kw_only=True):
    """One peer of a running tunnel, as the backend reports it now.

    ``peer_id`` is the WireGuard public key (base64, it is public), the OpenVPN common
    name or the remote IKE identity. ``last_seen_us`` is the last handshake or packet as
    Unix microseconds, ``None`` when the backend does not know. Byte counts are totals
    since the tunnel came up, as the backend counts them.
    """

    peer_id: str
    endpoint: str | None = None
    addresses: tuple[str, ...] = ()
    last_seen_us: int | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0


class ActionResult(Struct, frozen=True, kw_only=True):
    """What ``configure`` or ``teardown`` did: ``exit_code`` of the command that ran
    (``None`` when no process ran, e.g. a VICI call), and the end of its stderr, which the
    caller passes through the leak matrix before it is signed."""

    ok: bool
    exit_code: int | None = None
    stderr_tail: str = ""
    backend_version: str | None = None
