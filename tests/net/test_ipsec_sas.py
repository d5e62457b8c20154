"""IPsec settings and ``list-sas`` reading without a daemon: bytes summed over every child
SA (upstream took the first), last seen from ``use-in``/``use-out`` (upstream: the time
of the call), and a VICI peer that announces a huge message or never answers."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.net.ipsec import build_ipsec, peers_from_sas
from kei.adapters.net.ipsec_vici import Vici
from kei.errors import NetConfigError, NetError

NOW = 1_800_000_000_000_000
PSK = "kei-unit-psk-0123456789"


def _child(name: str, rx: int, tx: int, **more: bytes) -> dict[str, object]:
    return {"name": name.encode(), "state": b"INSTALLED", "bytes-in": str(rx).encode(),
            "bytes-out": str(tx).encode(), "remote-ts": [b"10.2.0.0/24"], **more}  # fmt: skip


def _ike(state: bytes, children: dict[str, object], **more: bytes) -> dict[str, object]:
    return {"kei-hq": {"state": state, "remote-id": b"b.example", "remote-host": b"192.0.2.7",
                       "remote-port": b"4500", "established": b"300", "child-sas": children,
                       **more}}  # fmt: skip


def test_bytes_summed_and_last_seen_from_idle_seconds() -> None:
    sas = [
        _ike(b"ESTABLISHED", {
            "hq-1": _child("hq", 100, 10, **{"use-in": b"7", "use-out": b"3"}),
            "hq-2": _child("hq", 50, 5, **{"use-in": b"40"}),
        }),
        _ike(b"CONNECTING", {"hq-3": _child("hq", 999, 999)}),
    ]  # fmt: skip
    (peer,) = peers_from_sas(sas, now_us=NOW)
    assert peer.peer_id == "b.example" and peer.endpoint == "192.0.2.7:4500"
    assert (peer.rx_bytes, peer.tx_bytes) == (150, 15)
    assert peer.last_seen_us == NOW - 3 * 1_000_000
    assert peer.addresses == ("10.2.0.0/24",)


def test_no_packet_yet_is_the_ike_establishment_and_nothing_known_is_none() -> None:
    (peer,) = peers_from_sas([_ike(b"ESTABLISHED", {"hq-1": _child("hq", 0, 0)})], now_us=NOW)
    assert peer.last_seen_us == NOW - 300 * 1_000_000
    bare = _ike(b"ESTABLISHED", {})
    del bare["kei-hq"]["established"]  # type: ignore[attr-defined]
    (unknown,) = peers_from_sas([bare], now_us=NOW)
    assert unknown.last_seen_us is None and unknown.rx_bytes == 0
    assert peers_from_sas([{"kei-hq": b"not a section"}, {}], now_us=NOW) == []


@given(st.lists(st.tuples(st.integers(0, 2**63), st.integers(0, 2**63)), max_size=6))
def test_every_child_counts(counts: list[tuple[int, int]]) -> None:
    children = {f"hq-{i}": _child("hq", rx, tx) for i, (rx, tx) in enumerate(counts)}
    (peer,) = peers_from_sas([_ike(b"ESTABLISHED", children)], now_us=NOW)
    assert peer.rx_bytes == sum(rx for rx, _ in counts)
    assert peer.tx_bytes == sum(tx for _, tx in counts)


def _table(**change: object) -> dict[str, object]:
    return {"mode": "ipsec", "psk_file": "psk", "local_id": "a.example",
            "remote_id": "b.example", "local_ts": ["10.1.0.0/24"],
            "remote_ts": ["10.2.0.0/24"], **change}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"local_ts": ["10.1.0.1/24"]}, "not a network"),
        ({"remote_ts": []}, "missing"),
        ({"remote_id": "b example"}, "characters"),
        ({"version": 3}, "from 1 to 2"),
        ({"encap": "yes"}, "true or false"),
        ({"psk": PSK}, "unknown key"),
        ({"psk_file": None}, "missing"),
        ({"netns": "vpn"}, "charon runs in its own namespace"),
        ({"allowed_ports": [500, 70000]}, "allowed_ports: must be a list of ports"),
        ({"allowed_ports": "500"}, "allowed_ports: must be a list of ports"),
        ({"allowed_ports": [True]}, "allowed_ports: must be a list of ports"),
    ],
)
def test_hostile_ipsec_settings(tmp_path: Path, change: dict[str, object], match: str) -> None:
    table = {k: v for k, v in _table(**change).items() if v is not None}
    with pytest.raises(NetConfigError, match=match):
        build_ipsec("hq", table, tmp_path)


def test_digest_covers_the_key_file_never_holds_it(tmp_path: Path) -> None:
    (tmp_path / "psk").write_text(PSK + "\n")
    (tmp_path / "psk").chmod(0o600)
    mode = build_ipsec("hq", _table(), tmp_path)
    assert mode.settings.initiate is False  # remote_addrs %any: a responder
    assert mode.settings.read_psk() == PSK
    digest = mode.config_sha256()
    (tmp_path / "psk").write_text(PSK + "X\n")
    assert mode.config_sha256() != digest and PSK not in digest
    (tmp_path / "psk").write_text("short\n")
    result = mode.configure()
    assert not result.ok and "at least 16 characters" in result.stderr_tail
    assert "short" not in result.stderr_tail.replace("psk_file", "")


@pytest.fixture
def vici_peer(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A VICI socket whose peer answers each request with the next scripted bytes."""
    path, replies = tmp_path / "v.vici", []
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn, suppress(OSError):  # the client may hang up first
            conn.recv(65536)
            for reply in replies:
                conn.sendall(reply)
            conn.recv(1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield path, replies
    server.close()
    thread.join(timeout=5)


def test_vici_refuses_a_huge_message(vici_peer: tuple[Path, list[bytes]]) -> None:
    path, replies = vici_peer
    replies.append(struct.pack("!I", 3 << 30) + b"\x01")
    with Vici(path, timeout=2) as session, pytest.raises(NetError, match="refused"):
        session.request("version")


def test_vici_silence_is_a_timeout(vici_peer: tuple[Path, list[bytes]]) -> None:
    path, replies = vici_peer
    replies.append(struct.pack("!I", 100) + b"\x01")  # a message cut short, then silence
    with Vici(path, timeout=0.5) as session, pytest.raises(NetError, match="strongSwan VICI"):
        session.request("version")


def test_allowed_ports_are_read_not_ignored(tmp_path: Path) -> None:
    """The intent records the ports the settings open (upstream ignored its inputs)."""
    assert build_ipsec("hq", _table(allowed_ports=[4500, 500, 500]), tmp_path).allowed_ports == (
        500,
        4500,
    )
    assert build_ipsec("hq", _table(), tmp_path).allowed_ports == ()
