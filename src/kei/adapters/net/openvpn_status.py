"""OpenVPN's ``status 3`` reply read into observed peers.

Why from ``status 3``: its fields are TAB-separated (a common name may hold a comma) and
its ``HEADER`` rows name the columns, so the parser follows the names instead of
positions that moved between OpenVPN versions. A server reports one ``CLIENT_LIST`` row
per connection (peer identity = the certificate's common name, endpoint = the real
address, bytes as the server counts them) and one ``ROUTING_TABLE`` row per virtual
address, whose "Last Ref" is the last time a packet used that route: that, not the
connection start upstream took, is when the peer was last seen. A client reports only
its own counters (``TCP/UDP read bytes``...). A malformed row is skipped and logged; it
does not hide the well-formed ones (upstream failed the whole call).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from kei.domain.net.values import ObservedPeer

log = logging.getLogger(__name__)

US: Final = 1_000_000
# Column names of OpenVPN 2.4+ status 3, used when the reply carries no HEADER row.
CLIENT_COLUMNS: Final = (
    "Common Name", "Real Address", "Virtual Address", "Virtual IPv6 Address",
    "Bytes Received", "Bytes Sent", "Connected Since", "Connected Since (time_t)",
    "Username", "Client ID", "Peer ID", "Data Channel Cipher",
)  # fmt: skip
ROUTE_COLUMNS: Final = (
    "Virtual Address", "Common Name", "Real Address", "Last Ref", "Last Ref (time_t)",
)  # fmt: skip


@dataclass
class _Peer:
    endpoint: str | None = None
    addresses: list[str] = field(default_factory=list)
    rx: int = 0
    tx: int = 0
    last_ref: int | None = None


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("negative")
    return value


def _address(text: str) -> str | None:
    """A virtual address as OpenVPN writes it (a route may end ``C`` for a cached one)."""
    text = text.strip()
    return text or None


def parse_server_status(lines: Sequence[str]) -> list[ObservedPeer]:
    """The clients of a server's ``status 3`` reply, one peer per common name.

    A common name connected more than once (``duplicate-cn``) is one peer: bytes summed,
    every virtual address listed, the latest endpoint and last reference kept.
    """
    columns = {"CLIENT_LIST": CLIENT_COLUMNS, "ROUTING_TABLE": ROUTE_COLUMNS}
    peers: dict[str, _Peer] = {}
    routes: list[dict[str, str]] = []
    for line in lines:
        fields = line.split("\t")
        kind = fields[0]
        if kind == "HEADER" and len(fields) > 2 and fields[1] in columns:
            columns[fields[1]] = tuple(fields[2:])
            continue
        if kind not in columns:
            continue
        row = dict(zip(columns[kind], fields[1:], strict=False))
        if kind == "ROUTING_TABLE":
            routes.append(row)
            continue
        try:
            name = row["Common Name"]
            rx, tx = _count(row["Bytes Received"]), _count(row["Bytes Sent"])
        except (KeyError, ValueError):
            log.warning(
                "OpenVPN status: malformed CLIENT_LIST row skipped (%d fields)", len(fields)
            )
            continue
        if not name or name == "UNDEF":
            continue
        peer = peers.setdefault(name, _Peer())
        peer.endpoint = row.get("Real Address") or peer.endpoint
        peer.rx, peer.tx = peer.rx + rx, peer.tx + tx
        for key in ("Virtual Address", "Virtual IPv6 Address"):
            address = _address(row.get(key, ""))
            if address and address not in peer.addresses:
                peer.addresses.append(address)
    for route in routes:
        owner = peers.get(route.get("Common Name", ""))
        try:
            seen = int(route["Last Ref (time_t)"])
        except (KeyError, ValueError):
            continue
        if owner is not None and seen > 0 and (owner.last_ref is None or seen > owner.last_ref):
            owner.last_ref = seen
    return [
        ObservedPeer(
            peer_id=name,
            endpoint=peer.endpoint,
            addresses=tuple(peer.addresses),
            last_seen_us=None if peer.last_ref is None else peer.last_ref * US,
            rx_bytes=peer.rx,
            tx_bytes=peer.tx,
        )
        for name, peer in sorted(peers.items())
    ]


def parse_client_counters(lines: Sequence[str]) -> tuple[int, int]:
    """(received, sent) link bytes from a client's ``status`` (``TCP/UDP read bytes``)."""
    found: dict[str, int] = {}
    for line in lines:
        key, _, value = line.replace(",", "\t").partition("\t")
        if key in ("TCP/UDP read bytes", "TCP/UDP write bytes"):
            try:
                found[key] = _count(value.strip())
            except ValueError:
                log.warning("OpenVPN status: %s is not a count", key)
    return found.get("TCP/UDP read bytes", 0), found.get("TCP/UDP write bytes", 0)


def parse_state(lines: Sequence[str]) -> tuple[str, str | None, str | None]:
    """(state, tunnel address, remote ip:port) from the last line of ``state``."""
    if not lines:
        return "UNKNOWN", None, None
    fields = lines[-1].split(",")
    fields += [""] * (6 - len(fields))
    remote = f"{fields[4]}:{fields[5]}" if fields[4] and fields[5] else fields[4] or None
    return fields[1] or "UNKNOWN", fields[3] or None, remote
