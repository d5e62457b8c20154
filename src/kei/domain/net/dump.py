"""``wg show <interface> dump`` read into peers, without ever keeping a key.

The dump is tab-separated. Its first line is the interface: private key, public key,
listen port, fwmark; it is dropped unread, since its first column is the interface's
private key. Each further line is a peer: public key, pre-shared key, endpoint,
allowed IPs, latest handshake, bytes received, bytes sent, persistent keepalive. The
pre-shared key column is never read either. What is kept is what the peer shows the
world: its public key (its identity), endpoint, allowed IPs, counters.

Latest handshake: wireguard-tools prints Unix seconds (0: never). boringtun prints the
age of the handshake in seconds instead (cloudflare/boringtun #447), so a value too
small to be a time since 2001 (:data:`EPOCH_FLOOR_S`) is read as an age before
``now_us``. A line that does not parse is counted, never quoted: an error names the
line number and the column, never its text, because the text may hold a key.
"""

from __future__ import annotations

import re
from typing import Final

from msgspec import Struct

from kei.domain.net.values import ObservedPeer

__all__ = ["EPOCH_FLOOR_S", "Dump", "handshake_us", "is_public_key", "parse_dump"]

EPOCH_FLOOR_S: Final = 1_000_000_000
"""2001-09-09: a handshake value below it is an age (boringtun), not a time."""
PEER_COLUMNS: Final = 8
_KEY: Final = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
_MOST_ADDRESSES: Final = 256
_MOST_CHARS: Final = 128


class Dump(Struct, frozen=True):
    """The peers of one dump, and the numbers of the lines that did not parse."""

    peers: tuple[ObservedPeer, ...]
    skipped: tuple[int, ...] = ()


def is_public_key(text: str) -> bool:
    """Whether ``text`` is a WireGuard key in base64 (32 bytes, 44 characters)."""
    return _KEY.fullmatch(text) is not None


def handshake_us(value: int, now_us: int) -> int | None:
    """The handshake as Unix µs: None for 0 (never), an age before ``now_us`` for a
    value below :data:`EPOCH_FLOOR_S`, else Unix seconds."""
    if value <= 0:
        return None
    if value < EPOCH_FLOOR_S:
        return max(0, now_us - value * 1_000_000)
    return value * 1_000_000


def parse_dump(text: str, now_us: int) -> Dump:
    """The peers of ``wg show <if> dump`` output; see the module docstring."""
    peers: list[ObservedPeer] = []
    skipped: list[int] = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if not line.strip():
            continue
        peer = _peer(line.split("\t"), now_us)
        if peer is None:
            skipped.append(number)
        else:
            peers.append(peer)
    return Dump(tuple(peers), tuple(skipped))


def _peer(cols: list[str], now_us: int) -> ObservedPeer | None:
    if len(cols) != PEER_COLUMNS or not is_public_key(cols[0]):
        return None
    numbers = [_whole(cols[i]) for i in (4, 5, 6)]
    if any(n is None for n in numbers):
        return None
    handshake, rx, tx = (n or 0 for n in numbers)
    endpoint = cols[2] if cols[2] not in ("", "(none)") else None
    if endpoint is not None and not _plain(endpoint):
        return None
    addresses = tuple(a for a in cols[3].split(",") if a and a != "(none)")
    if len(addresses) > _MOST_ADDRESSES or not all(_plain(a) for a in addresses):
        return None
    return ObservedPeer(peer_id=cols[0], endpoint=endpoint, addresses=addresses,
                        last_seen_us=handshake_us(handshake, now_us), rx_bytes=rx,
                        tx_bytes=tx)  # fmt: skip


def _whole(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    return int(text)


def _plain(text: str) -> bool:
    """An endpoint or address: short, printable ASCII, no spaces."""
    return len(text) <= _MOST_CHARS and text.isascii() and text.isprintable() and " " not in text
