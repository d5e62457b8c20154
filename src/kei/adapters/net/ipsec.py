"""The IPsec network mode: strongSwan's charon driven through VICI, never through text.

Why VICI: upstream ran ``swanctl --load-all`` (ignoring its settings), parsed ``swanctl
--list-sas`` text, counted only the first child SA's bytes and reported "last seen" as
the time of the call. Here the connection and its pre-shared key are loaded from kei's
settings (``load-conn``, ``load-shared``; the key read from its file at that moment and
never kept), SAs are read structured (``list-sas``): bytes summed over every child SA,
"last seen" from the idle seconds charon reports for the child SAs (``use-in`` and
``use-out``), or from the IKE SA's establishment when no packet has passed yet; a peer
is its remote IKE identity. charon itself is the system's (or a test's) daemon: kei
loads into it and does not start it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kei.adapters.net.ipsec_vici import Message, Vici, number, sections, text
from kei.adapters.net.mode import ModeBase
from kei.adapters.net.vpn_table import WORD, Table, unix_socket_path
from kei.domain.net.values import ActionResult, ObservedPeer
from kei.errors import KeiError

__all__ = ["IpsecMode", "build_ipsec", "peers_from_sas"]

log = logging.getLogger(__name__)

US: Final = 1_000_000
MIN_PSK: Final = 16
KNOWN: Final = frozenset(
    {"vici_socket", "local_addrs",
     "remote_addrs", "local_id", "remote_id", "psk_file", "local_ts", "remote_ts",
     "proposals", "esp_proposals", "version", "encap", "initiate", "timeout"}
)  # fmt: skip


@dataclass(frozen=True)
class IpsecSettings:
    """One ``mode = "ipsec"`` tunnel, every value checked; see docs/net.md."""

    name: str
    public: bool
    allowed_ports: tuple[int, ...]
    vici_socket: Path
    psk_file: Path
    conn: dict[str, Any]
    initiate: bool
    timeout: int
    table: Table

    @property
    def ike(self) -> str:
        """The connection's name inside charon (kei's tunnels are kept apart by a prefix)."""
        return f"kei-{self.name}"

    def owners(self) -> list[str]:
        return [self.conn["local"]["id"], self.conn["remote"]["id"]]

    def read_psk(self) -> str:
        """The pre-shared key from its file (one line); read when loaded, never kept."""
        raw = self.table.read_file("psk_file", self.psk_file, secret=True)
        try:
            psk = raw.decode("utf-8").strip("\r\n")
        except UnicodeDecodeError:
            raise self.table.fail("psk_file", f"{self.psk_file} is not UTF-8 text") from None
        if len(psk) < MIN_PSK or "\n" in psk:
            raise self.table.fail(
                "psk_file", f"{self.psk_file} must hold one line of at least {MIN_PSK} characters"
            )
        return psk


def read_settings(name: str, raw: Mapping[str, object], base_dir: Path) -> IpsecSettings:
    """Check tunnel ``name``'s table; :class:`NetConfigError` names the first bad key."""
    table = Table(name, raw, base_dir)
    table.refuse_unknown(KNOWN)
    if table.netns() is not None:
        raise table.fail("netns", "charon runs in its own namespace; kei only talks to its socket")
    remote_addrs = table.words("remote_addrs", ("%any",))
    child = {
        "local_ts": list(table.networks("local_ts")),
        "remote_ts": list(table.networks("remote_ts")),
        "esp_proposals": list(table.words("esp_proposals", ("default",))),
        "mode": "tunnel",
        "start_action": "none",
    }
    conn = {
        "version": str(table.integer("version", 2, 1, 2)),
        "local_addrs": list(table.words("local_addrs", ("%any",))),
        "remote_addrs": list(remote_addrs),
        "proposals": list(table.words("proposals", ("default",))),
        "encap": "yes" if table.flag("encap", False) else "no",
        "local": {"auth": "psk", "id": table.text("local_id", pattern=WORD)},
        "remote": {"auth": "psk", "id": table.text("remote_id", pattern=WORD)},
        "children": {name: child},
    }
    vici_socket = table.path("vici_socket", Path("/var/run/charon.vici"))
    return IpsecSettings(
        name=name,
        public=table.flag("public", True),
        allowed_ports=table.ports(),
        vici_socket=unix_socket_path(table, "vici_socket", vici_socket),
        psk_file=table.path("psk_file"),
        conn=conn,
        initiate=table.flag("initiate", "%any" not in remote_addrs),
        timeout=table.integer("timeout", 30, 1, 600),
        table=table,
    )


class IpsecMode(ModeBase):
    """A tunnel of ``mode = "ipsec"``; see the module docstring and docs/net.md."""

    MODE = "ipsec"
    settings: IpsecSettings

    def __init__(self, settings: IpsecSettings) -> None:
        self.settings = settings

    def config_sha256(self) -> str:
        """SHA-256 of the connection as loaded and of the key file's digest."""
        conn = json.dumps(self.settings.conn, sort_keys=True, separators=(",", ":"))
        psk = self.settings.table.file_digest("psk_file", self.settings.psk_file, secret=True)
        return hashlib.sha256(
            f"{conn}\ninitiate={self.settings.initiate}\npsk {psk}\n".encode()
        ).hexdigest()

    def _session(self) -> Vici:
        return Vici(self.settings.vici_socket, timeout=self.settings.timeout + 5.0)

    def _sas(self, session: Vici) -> list[Message]:
        return session.stream("list-sas", "list-sa", {"ike": self.settings.ike})

    def configure(self) -> ActionResult:
        s = self.settings
        try:
            psk = s.read_psk()
            with self._session() as session:
                reply = session.request("version")
                version = f"strongSwan {text(reply.get('version'))} ({text(reply.get('daemon'))})"
                session.request(
                    "load-shared", {"id": s.ike, "type": "IKE", "data": psk, "owners": s.owners()}
                )
                session.request("load-conn", {s.ike: s.conn})
                if s.initiate and not _established(self._sas(session), s.name):
                    session.stream(
                        "initiate", "control-log",
                        {"child": s.name, "ike": s.ike, "timeout": str(s.timeout * 1000)},
                    )  # fmt: skip
        except KeiError as exc:
            return ActionResult(ok=False, stderr_tail=_failure(exc))
        return ActionResult(ok=True, backend_version=version)

    def teardown(self) -> ActionResult:
        s = self.settings
        if not s.vici_socket.exists():  # no charon: it holds every SA, so none is left
            return ActionResult(ok=True, stderr_tail=f"no VICI socket at {s.vici_socket}")
        try:
            with self._session() as session:
                if self._sas(session):
                    session.stream(
                        "terminate", "control-log",
                        {"ike": s.ike, "timeout": str(s.timeout * 1000), "force": "yes"},
                    )  # fmt: skip
                loaded = session.request("get-conns").get("conns") or []
                if s.ike.encode() in loaded:
                    session.request("unload-conn", {"name": s.ike})
                shared = session.request("get-shared").get("keys") or []
                if s.ike.encode() in shared:
                    session.request("unload-shared", {"id": s.ike})
        except KeiError as exc:
            return ActionResult(ok=False, stderr_tail=_failure(exc))
        return ActionResult(ok=True)

    def peers(self) -> list[ObservedPeer]:
        with self._session() as session:
            sas = self._sas(session)
        return peers_from_sas(sas, now_us=time.time_ns() // 1000)


def _failure(exc: KeiError) -> str:
    return "\n".join(part for part in (str(exc), exc.hint) if part)[-2000:]


def _established(sas: Sequence[Message], child: str) -> bool:
    """Whether an established IKE SA already carries an installed child SA ``child``."""
    for event in sas:
        for _, ike in sections(event):
            if text(ike.get("state")) != "ESTABLISHED":
                continue
            for _, sa in sections(ike.get("child-sas")):
                if text(sa.get("name")) == child and text(sa.get("state")) == "INSTALLED":
                    return True
    return False


def peers_from_sas(sas: Sequence[Message], *, now_us: int) -> list[ObservedPeer]:
    """Peers from ``list-sas`` events: one per remote IKE identity of an established SA.

    Bytes are summed over every child SA (upstream took the first only). Last seen is
    ``now - idle``, idle being the fewest seconds since a packet went either way on any
    child SA (``use-in``/``use-out``), or since the IKE SA was established when no packet
    has passed; a peer with neither is not seen at an invented time: ``None``.
    """
    found: dict[str, dict[str, Any]] = {}
    for event in sas:
        for _, ike in sections(event):
            peer_id = text(ike.get("remote-id"))
            if text(ike.get("state")) != "ESTABLISHED" or not peer_id:
                continue
            peer = found.setdefault(peer_id, {"rx": 0, "tx": 0, "idle": None, "ts": []})
            host, port = text(ike.get("remote-host")), text(ike.get("remote-port"))
            peer["endpoint"] = f"{host}:{port}" if host and port else host or None
            idles: list[int | None] = []
            for _, child in sections(ike.get("child-sas")):
                peer["rx"] += number(child.get("bytes-in")) or 0
                peer["tx"] += number(child.get("bytes-out")) or 0
                idles += [number(child.get(key)) for key in ("use-in", "use-out")]
                for ts in child.get("remote-ts") or []:
                    if text(ts) not in peer["ts"]:
                        peer["ts"].append(text(ts))
            used = [i for i in idles if i is not None]
            idle = min(used) if used else number(ike.get("established"))
            if idle is not None and (peer["idle"] is None or idle < peer["idle"]):
                peer["idle"] = idle
    return [
        ObservedPeer(
            peer_id=peer_id,
            endpoint=peer.get("endpoint"),
            addresses=tuple(peer["ts"]),
            last_seen_us=None if peer["idle"] is None else now_us - peer["idle"] * US,
            rx_bytes=peer["rx"],
            tx_bytes=peer["tx"],
        )
        for peer_id, peer in sorted(found.items())
    ]


def build_ipsec(name: str, table: Mapping[str, object], base_dir: Path) -> IpsecMode:
    """The registry's builder: tunnel ``name`` from its settings table, paths relative to
    ``base_dir``; :class:`~kei.errors.NetConfigError` for a bad table."""
    return IpsecMode(read_settings(name, table, base_dir))
