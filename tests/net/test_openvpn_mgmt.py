"""The management client against a scripted peer on a real UNIX socket: CRLF replies,
notifications between reply lines, replies cut into pieces, and hostile peers (no END,
a reply over the cap, a password prompt, a closed socket) that must end in NetError
within the timeout instead of hanging."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kei.adapters.net.openvpn_mgmt import ManagementClient, quote
from kei.errors import NetError

BANNER = b">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n"
STATUS = (
    b"TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu\r\n"
    b"TIME\t2026-12-07 21:00:00\t1796677200\r\n"
    b"HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address"
    b"\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername"
    b"\tClient ID\tPeer ID\tData Channel Cipher\r\n"
    b"CLIENT_LIST\talice\t10.0.0.2:40000\t10.8.0.2\t\t100\t200\t2026-12-07 20:00:00"
    b"\t1796673600\tUNDEF\t0\t0\tAES-256-GCM\r\n"
    b"GLOBAL_STATS\tMax bcast/mcast queue length\t0\r\n"
    b"END\r\n"
)

Script = Callable[[socket.socket], None]


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Callable[[Script], Path]]:
    """Serve one connection on a UNIX socket with ``script``; the socket's path."""
    threads: list[threading.Thread] = []
    servers: list[socket.socket] = []

    def serve(script: Script) -> Path:
        path = tmp_path / f"m{len(servers)}.sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.listen(1)
        servers.append(server)

        def run() -> None:
            conn, _ = server.accept()
            with conn, suppress(OSError):  # the client may hang up first
                conn.sendall(BANNER)
                script(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return path

    yield serve
    for server in servers:
        server.close()
    for thread in threads:
        thread.join(timeout=5)


def _expect(conn: socket.socket, command: bytes) -> None:
    got = b""
    while not got.endswith(b"\n"):
        chunk = conn.recv(1024)
        if not chunk:
            raise OSError("closed")
        got += chunk
    assert got == command + b"\n"


def test_status_in_pieces_with_notifications_between_lines(
    peer: Callable[[Script], Path],
) -> None:
    def script(conn: socket.socket) -> None:
        _expect(conn, b"status 3")
        reply = STATUS.replace(b"GLOBAL", b">BYTECOUNT_CLI:0,5,6\r\nGLOBAL")
        for start in range(0, len(reply), 7):  # cut anywhere, even inside a CRLF
            conn.sendall(reply[start : start + 7])
        _expect(conn, b"quit")

    with ManagementClient(peer(script), timeout=5) as client:
        assert client.banner and client.banner.startswith(">INFO:OpenVPN Management")
        rows = client.status()
        assert rows[0].startswith("TITLE\t") and rows[-1].startswith("GLOBAL_STATS")
        assert not any("\r" in r or "\n" in r for r in rows)
        assert client.wait_notification(">BYTECOUNT_CLI:", 1) == ">BYTECOUNT_CLI:0,5,6"
        client._send("quit")


def test_upstream_lf_reader_hangs_where_kei_returns(peer: Callable[[Script], Path]) -> None:
    """Defect 1: on OpenVPN's CRLF bytes, a reader waiting for ``\\nEND\\n`` times out."""

    def script(conn: socket.socket) -> None:
        _expect(conn, b"status 3")
        conn.sendall(STATUS)
        _expect(conn, b"status 3")
        conn.sendall(STATUS)
        conn.recv(1)

    path = peer(script)
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(path))
        raw.settimeout(1.0)
        raw.sendall(b"status 3\n")
        data = b""
        with pytest.raises(TimeoutError):
            while b"\nEND\n" not in data:
                data += raw.recv(4096)
        assert data.endswith(b"\r\nEND\r\n")
        client = ManagementClient(path, timeout=5)
        client._sock, client._buffer = raw, b""
        raw.settimeout(5.0)
        assert client.status()[-1].startswith("GLOBAL_STATS")


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (STATUS[:-5], "did not finish a reply"),  # no END ever comes
        (b"TITLE\t" + b"x" * 5000, "larger than 4096 bytes"),  # no CRLF, over the cap
        (b"ERROR: unknown command\r\n", "refused 'status'"),
    ],
)
def test_hostile_replies_end_in_net_error(
    peer: Callable[[Script], Path], reply: bytes, match: str
) -> None:
    def script(conn: socket.socket) -> None:
        _expect(conn, b"status 3")
        conn.sendall(reply)
        conn.recv(1)  # hold the connection open until the client gives up

    with (
        ManagementClient(peer(script), timeout=1.0, max_reply=4096) as client,
        pytest.raises(NetError, match=match),
    ):
        client.status()


def test_closed_mid_reply_and_password_prompt(
    peer: Callable[[Script], Path], tmp_path: Path
) -> None:
    def closes(conn: socket.socket) -> None:
        _expect(conn, b"version")
        conn.sendall(b"OpenVPN Version: OpenVPN 2.6.14\r\n")

    with (
        ManagementClient(peer(closes), timeout=2) as client,
        pytest.raises(NetError, match="closed"),
    ):
        client.version()

    path = tmp_path / "pw.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def prompt() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"ENTER PASSWORD:")
            conn.recv(1)

    thread = threading.Thread(target=prompt, daemon=True)
    thread.start()
    with pytest.raises(NetError, match="asks for a password"):
        ManagementClient(path, timeout=2).connect()
    server.close()
    thread.join(timeout=5)
    with pytest.raises(NetError, match="cannot connect"):
        ManagementClient(tmp_path / "absent.sock", timeout=1).connect()


def test_single_line_commands_and_quoting(peer: Callable[[Script], Path]) -> None:
    def script(conn: socket.socket) -> None:
        _expect(conn, b'kill "o\\"brien \\\\x"')
        conn.sendall(
            b">LOG:1,I,noise\r\nSUCCESS: common name 'o\"brien \\x' found, 1 client(s) killed\r\n"
        )
        _expect(conn, b"pid")
        conn.sendall(b"SUCCESS: pid=4242\r\n")
        _expect(conn, b"signal SIGTERM")
        conn.sendall(b"ERROR: signal not allowed\r\n")
        conn.recv(1)

    with ManagementClient(peer(script), timeout=5) as client:
        assert client.kill('o"brien \\x').endswith("1 client(s) killed")
        assert client.pid() == 4242
        with pytest.raises(NetError, match="refused 'signal'"):
            client.signal("SIGTERM")
        assert client.notifications[-1] == ">LOG:1,I,noise"
    with pytest.raises(NetError, match="control character"):
        quote("alice\nsignal SIGTERM")
    with pytest.raises(NetError, match="not a signal"):
        ManagementClient(Path("unused")).signal("SIGKILL")


reply_line = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40).filter(
    lambda s: not s.startswith((">", "ERROR:")) and s != "END"
)
notification = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40).map(
    lambda s: ">" + s
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(reply_line, st.lists(notification, max_size=2)), max_size=12))
def test_reply_lines_and_notifications_never_mix(rows: list[tuple[str, list[str]]]) -> None:
    """Whatever notifications arrive between the lines of a reply, the reply is exactly
    its lines and the notifications are kept in order, apart."""
    wire = b"".join(
        "".join(f"{n}\r\n" for n in notes).encode() + f"{line}\r\n".encode() for line, notes in rows
    )
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(wire + b">LAST\r\nEND\r\n")
        client = ManagementClient(Path("socketpair"), timeout=5)
        client._sock = ours
        client._send = lambda command: None  # type: ignore[method-assign]
        assert client.lines("status 3") == [line for line, _ in rows]
        assert client.notifications == [n for _, notes in rows for n in notes] + [">LAST"]
