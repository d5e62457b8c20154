"""``net_peers``: every peer each tunnel has reported, as last recorded.

A fold of the ``net.peer.*`` events (and ``net.mode.torn_down``) of the streams
``net/<mode>/<name>``: one row per (stream, peer), ``present`` 1 from
``net.peer.appeared`` until ``net.peer.disappeared`` or the tunnel's teardown, with the
last recorded endpoint, addresses, last handshake and byte counts, and when the peer
appeared and was last recorded (signed times). ``kei net peers`` reads it. Belongs to
``kei net`` (not a default read model), like the notify read models.

Table ``net_peers_rows``: ``key`` (``<stream> <peer_id>``, primary key), ``stream``,
``mode``, ``name``, ``peer_id``, ``endpoint``, ``addresses`` (comma-separated),
``last_seen_us``, ``rx_bytes``, ``tx_bytes``, ``present``, ``appeared_us``,
``recorded_us``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Integer, String

from kei.domain.events import net as ev
from kei.domain.log.recorded import RecordedEvent
from kei.projections.base import KEY, MAYBE, NEEDED
from kei.projections.notify_rows import KeyedRows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = "net_peers"
_PEER_TYPES: Final = frozenset({"net.peer.appeared", "net.peer.observed", "net.peer.disappeared"})
_MAYBE: Final = frozenset({"endpoint", "last_seen_us"})


class NetPeers(KeyedRows):
    """Each tunnel's peers; see the module docstring."""

    event_types = frozenset({*_PEER_TYPES, "net.mode.torn_down"})
    suffix = "rows"
    columns = tuple(
        (n, kind, KEY if n == "key" else MAYBE if n in _MAYBE else NEEDED)
        for n, kind in (("key", String), ("stream", String), ("mode", String), ("name", String),
                        ("peer_id", String), ("endpoint", String), ("addresses", String),
                        ("last_seen_us", BigInteger), ("rx_bytes", BigInteger),
                        ("tx_bytes", BigInteger), ("present", Integer),
                        ("appeared_us", BigInteger), ("recorded_us", BigInteger))
    )  # fmt: skip

    def __init__(self, name: str = NAME) -> None:
        super().__init__(name)

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        mine = [e for e in events if e.stream.startswith(ev.NET_STREAM_PREFIX)]
        if not mine:
            return
        downs = {e.stream for e in mine if e.type == "net.mode.torn_down"}
        keys = {f"{e.stream} {e.payload().peer_id}" for e in mine if e.type in _PEER_TYPES}  # type: ignore[attr-defined]
        stored = self.stored(conn, keys | self._present_keys(conn, downs))
        rows = {k: list(v) for k, v in stored.items()}
        for e in mine:
            if e.type == "net.mode.torn_down":
                for row in rows.values():
                    if row[1] == e.stream:
                        row[10], row[12] = 0, e.timestamp_us
                continue
            _apply(rows, e)
        self.replace(conn, stored, [tuple(rows[k]) for k in sorted(rows)])

    def _present_keys(self, conn: Connection, streams: set[str]) -> set[str]:
        if not streams:
            return set()
        t = self.table
        query = t.select().where(t.c.stream.in_(sorted(streams)), t.c.present == 1)
        return {str(r.key) for r in conn.execute(query)}


def _apply(rows: dict[Any, list[Any]], e: RecordedEvent) -> None:
    p = e.payload()
    assert isinstance(p, ev.NetPeerAppeared | ev.NetPeerObserved | ev.NetPeerDisappeared)
    key = f"{e.stream} {p.peer_id}"
    row = rows.get(key)
    if row is None:
        _, mode, name = e.stream.split("/", 2)
        row = rows[key] = [key, e.stream, mode, name, p.peer_id, None, "", None, 0, 0, 0,
                           e.timestamp_us, e.timestamp_us]  # fmt: skip
    row[12] = e.timestamp_us
    if isinstance(p, ev.NetPeerAppeared):
        row[5], row[6], row[10], row[11] = p.endpoint, ",".join(p.addresses), 1, e.timestamp_us
    elif isinstance(p, ev.NetPeerObserved):
        row[5], row[7], row[8], row[9], row[10] = p.endpoint, p.last_seen_us, p.rx_bytes, \
            p.tx_bytes, 1  # fmt: skip
    else:
        row[10] = 0
