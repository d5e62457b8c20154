"""OpenVPN settings, the file kei writes from them, ``status 3`` parsing, and the
``systemctl`` path (systemd is not PID 1 here: a recording fake ``systemctl`` on PATH)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.net import openvpn_config
from kei.adapters.net.openvpn import build_openvpn
from kei.adapters.net.openvpn_status import (
    parse_client_counters,
    parse_server_status,
    parse_state,
)
from kei.errors import NetConfigError

KEY_BYTES = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, object]:
    for name in ("ca.crt", "server.crt"):
        (tmp_path / name).write_text(f"certificate {name}\n")
    (tmp_path / "server.key").write_text(KEY_BYTES)
    (tmp_path / "server.key").chmod(0o600)
    return {"ca_file": "ca.crt", "cert_file": "server.crt", "key_file": "server.key"}


def _server(tmp_path: Path, files: dict[str, object], **more: object) -> dict[str, object]:
    return {"mode": "openvpn", "subnet": "10.8.0.0/24", "launch": "direct", **files, **more}


def test_allowed_ports_are_read_and_checked(tmp_path: Path, files: dict[str, object]) -> None:
    mode = build_openvpn("office", _server(tmp_path, files, allowed_ports=[1194, 443]), tmp_path)
    assert mode.allowed_ports == (443, 1194) and mode.is_up() is None
    with pytest.raises(NetConfigError, match="allowed_ports"):
        build_openvpn("office", _server(tmp_path, files, allowed_ports=[0]), tmp_path)


def test_server_config_is_generated_from_settings(tmp_path: Path, files: dict[str, object]) -> None:
    mode = build_openvpn("office", _server(tmp_path, files, port=1195, proto="tcp"), tmp_path)
    text = mode.settings.render()
    assert text.startswith("# Written by kei for net tunnel office")
    assert "proto tcp-server\nport 1195\n" in text and "server 10.8.0.0 255.255.255.0" in text
    assert f'key "{tmp_path / "server.key"}"' in text
    assert f'management "{tmp_path / "run/net/openvpn/office/mgmt.sock"}" unix' in text
    assert "TOP-SECRET" not in text and mode.is_public and mode.mode_name == "openvpn"
    digest = mode.config_sha256()
    assert len(digest) == 64 and "TOP-SECRET" not in digest
    (tmp_path / "server.key").write_text(KEY_BYTES.replace("TOP", "NEW"))
    assert mode.config_sha256() != digest  # a new key is a new desired state


def test_client_config_and_privacy_default(tmp_path: Path, files: dict[str, object]) -> None:
    table = {"mode": "openvpn", "role": "client", "remote": "vpn.example.org",
             "server_name": "server", "launch": "direct", **files}  # fmt: skip
    mode = build_openvpn("home", table, tmp_path)
    text = mode.settings.render()
    assert "client\nproto udp\nremote vpn.example.org 1194\n" in text
    assert "verify-x509-name server name" in text and not mode.is_public


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"key_file": 'k.key"\nscript-security 2'}, "one line without quotes"),
        ({"subnet": "10.8.0.1/24"}, "not a network"),
        ({"subnet": "10.8.0.0/30"}, "/29 or larger"),
        ({"device": "eth0"}, "device"),
        ({"port": 0}, "from 1 to 65535"),
        ({"port": True}, "from 1 to 65535"),
        ({"proto": "sctp"}, "one of udp, tcp"),
        ({"up": "/bin/sh"}, "unknown key"),
        ({"launch": "cron"}, "one of auto, direct, systemctl"),
        ({"management_socket": "x" * 120}, "longer than 107 bytes"),
        ({"netns": "a b"}, "key netns"),
        ({"netns": "vpn", "launch": "systemctl"}, 'needs launch = "direct"'),
    ],
)
def test_hostile_settings_are_refused(
    tmp_path: Path, files: dict[str, object], change: dict[str, object], match: str
) -> None:
    with pytest.raises(NetConfigError, match=match):
        build_openvpn("office", _server(tmp_path, files, **change), tmp_path)


def test_bad_names_and_unreadable_keys(tmp_path: Path, files: dict[str, object]) -> None:
    with pytest.raises(NetConfigError, match="tunnel name"):
        build_openvpn("../etc", _server(tmp_path, files), tmp_path)
    mode = build_openvpn("office", _server(tmp_path, files, key_file="absent.key"), tmp_path)
    result = mode.configure()
    assert not result.ok and "[tunnels.office]: key key_file: cannot read" in result.stderr_tail
    assert mode.running_pid() is None
    (tmp_path / "server.key").chmod(0o644)
    mode = build_openvpn("office", _server(tmp_path, files), tmp_path)
    result = mode.configure()
    assert not result.ok and "readable by others" in result.stderr_tail
    assert "TOP-SECRET" not in result.stderr_tail
    (tmp_path / "link.key").symlink_to(tmp_path / "server.key")
    (tmp_path / "server.key").chmod(0o600)
    mode = build_openvpn("office", _server(tmp_path, files, key_file="link.key"), tmp_path)
    assert "cannot read" in mode.configure().stderr_tail  # a symlinked key is refused


def _fake_systemctl(tmp_path: Path, code: int = 0) -> Path:
    record = tmp_path / "systemctl.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {record}\necho "fake failure" >&2\nexit {code}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return record


def test_systemctl_path_with_a_recording_fake(
    tmp_path: Path, files: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _fake_systemctl(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    marker = tmp_path / "run-systemd-system"
    marker.mkdir()
    monkeypatch.setattr(openvpn_config, "SYSTEMD_MARKER", marker)  # systemd is PID 1
    table = _server(tmp_path, files, launch="auto", config_dir="etc-openvpn-server")
    mode = build_openvpn("office", table, tmp_path)
    assert mode.settings.launch == "systemctl"
    assert mode.settings.management_socket == Path("/run/openvpn-server/office.sock")

    assert mode.configure().ok
    written = tmp_path / "etc-openvpn-server" / "office.conf"
    assert written.read_text() == mode.settings.render()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert mode.configure().ok  # unchanged: start (a no-op when active), not restart
    assert mode.teardown().ok
    assert record.read_text().splitlines() == [
        "restart openvpn-server@office.service",
        "start openvpn-server@office.service",
        "stop openvpn-server@office.service",
    ]

    written.write_text("# hand-written by the admin\ndev tun\n")
    refused = mode.configure()
    assert not refused.ok and "not written by kei" in refused.stderr_tail
    assert written.read_text().startswith("# hand-written")  # never overwritten

    written.unlink()
    _fake_systemctl(tmp_path, code=5)
    failed = mode.configure()
    assert not failed.ok and failed.exit_code == 5 and failed.stderr_tail == "fake failure"


def test_auto_is_direct_without_systemd(
    tmp_path: Path, files: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openvpn_config, "SYSTEMD_MARKER", tmp_path / "absent")
    mode = build_openvpn("office", _server(tmp_path, files, launch="auto"), tmp_path)
    assert mode.settings.launch == "direct"


HEADERS = (
    "HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address"
    "\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername"
    "\tClient ID\tPeer ID\tData Channel Cipher",
    "HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref"
    "\tLast Ref (time_t)",
)


def test_status3_last_seen_is_last_ref_not_connected_since() -> None:
    lines = [
        *HEADERS,
        "CLIENT_LIST\talice, the admin\t10.0.0.2:4000\t10.8.0.2\tfd00::2\t10\t20\tx\t1000\tU\t0\t0\tC",
        "CLIENT_LIST\tbob\t10.0.0.3:4000\t10.8.0.3\t\tnot-a-number\t20\tx\t1000\tU\t1\t1\tC",
        "CLIENT_LIST\tcarol\t10.0.0.4:4000",
        "ROUTING_TABLE\t10.8.0.2\talice, the admin\t10.0.0.2:4000\tx\t5000",
        "ROUTING_TABLE\tfd00::2\talice, the admin\t10.0.0.2:4000\tx\t5005",
        "GLOBAL_STATS\tMax bcast/mcast queue length\t0",
    ]
    (alice,) = parse_server_status(lines)  # malformed bob and carol skipped, not fatal
    assert alice.peer_id == "alice, the admin" and alice.endpoint == "10.0.0.2:4000"
    assert alice.addresses == ("10.8.0.2", "fd00::2")
    assert alice.last_seen_us == 5005 * 1_000_000
    assert (alice.rx_bytes, alice.tx_bytes) == (10, 20)


names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30).filter(
    lambda n: n != "UNDEF" and "\t" not in n
)


@given(st.lists(st.tuples(names, st.integers(0, 2**62), st.integers(0, 2**62)), max_size=8))
def test_status3_sums_duplicate_common_names(rows: list[tuple[str, int, int]]) -> None:
    lines = [HEADERS[0]] + [
        f"CLIENT_LIST\t{cn}\t10.0.0.{i}:1\t10.8.0.{i}\t\t{rx}\t{tx}\tx\t1\tU\t{i}\t{i}\tC"
        for i, (cn, rx, tx) in enumerate(rows)
    ]
    peers = {p.peer_id: p for p in parse_server_status(lines)}
    assert set(peers) == {cn for cn, _, _ in rows}
    for cn, peer in peers.items():
        assert peer.rx_bytes == sum(rx for name, rx, _ in rows if name == cn)
        assert peer.tx_bytes == sum(tx for name, _, tx in rows if name == cn)
        assert peer.last_seen_us is None  # no routing table row: unknown, not invented


def test_client_status_and_state() -> None:
    stats = ["TITLE\tOpenVPN STATISTICS", "TCP/UDP read bytes\t4000", "TCP/UDP write bytes\t3000"]
    assert parse_client_counters(stats) == (4000, 3000)
    assert parse_client_counters(["TCP/UDP read bytes,-1"]) == (0, 0)
    state = parse_state(["1796677200,CONNECTED,SUCCESS,10.8.0.2,10.231.0.1,1194,,,"])
    assert state == ("CONNECTED", "10.8.0.2", "10.231.0.1:1194")
    assert parse_state([]) == ("UNKNOWN", None, None)


def test_teardown_of_a_stopped_tunnel_removes_no_file_it_did_not_make(
    tmp_path: Path, files: dict[str, object]
) -> None:
    (tmp_path / "notes.txt").write_text("the user's file\n")
    mode = build_openvpn(
        "office", _server(tmp_path, files, management_socket="notes.txt"), tmp_path
    )
    assert mode.teardown().ok  # nothing runs: fine, and nothing removed
    assert (tmp_path / "notes.txt").read_text() == "the user's file\n"
