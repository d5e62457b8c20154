"""One request, in a fresh fork of the warm daemon: check it, adopt the caller's world
(stdio, environment, working directory, umask), run the command, send its exit code.

It leaves only through ``os._exit``: the daemon's own stack and clean-up must never
run in a fork. The command's ``atexit`` handlers do run, before the exit code is sent.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import signal
import socket
import struct
import sys
import time
from typing import NoReturn, TextIO

from msgspec import Struct

from kei.adapters.daemon import wire
from kei.adapters.daemon.warm import Warm, changed

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 5.0
RESET = (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP)


class ServerInfo(Struct):
    """What a ping reports: the daemon's pid, start time, requests served, idle limit."""

    pid: int
    started: float
    served: int
    idle_s: float
    package: str
    prefix: str


def serve_one(conn: socket.socket, inherited: list[int], warm: Warm,
              info: ServerInfo) -> NoReturn:  # fmt: skip
    """Handle the request on ``conn`` and exit; ``inherited`` are the daemon's own
    descriptors (listening socket, lock), closed here so this fork holds neither."""
    for fd in inherited:
        os.close(fd)
    for signum in RESET:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        code = _serve(conn, warm, info)
    except Exception:
        log.exception("request failed before its command ran")
    os._exit(code)


def _serve(conn: socket.socket, warm: Warm, info: ServerInfo) -> int:
    if not _same_user(conn):
        log.warning("refused a connection from another user")
        return 0
    conn.settimeout(REQUEST_TIMEOUT_S)
    request, fds = _read(conn)
    refusal = _refusal(request, warm, info, len(fds))
    if refusal is not None or request.kind != "run":
        for fd in fds:
            os.close(fd)
        conn.sendall(refusal or _control(request, info))
        return 0
    conn.sendall(wire.STARTED + os.getpid().to_bytes(4, "big"))
    if conn.recv(1) != wire.GO:
        return 0
    conn.settimeout(None)
    _adopt(request, fds)
    code = _run(request.argv, warm)
    with contextlib.suppress(OSError):
        conn.sendall(wire.EXITED + bytes([code & 0xFF]))
    return code


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return bool(struct.unpack("3i", creds)[1] == os.getuid())


def _read(conn: socket.socket) -> tuple[wire.Request, list[int]]:
    """The request and the descriptors sent with it (ValueError: not a request)."""
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        if int.from_bytes(data[:4].ljust(4, b"\0"), "big") > wire.MAX_REQUEST:
            raise ValueError("request too large")
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("request cut short")
        data += chunk
    return wire.decode(data[4 : 4 + int.from_bytes(data[:4], "big")]), fds


def _refusal(request: wire.Request, warm: Warm, info: ServerInfo, fds: int) -> bytes | None:
    """Why this daemon will not run the request (the client then runs it itself)."""
    if request.kind != "run":
        return None
    if fds != 3:
        return wire.REFUSED + b"no stdin, stdout and stderr came with the request"
    if (request.prefix, request.package) != (info.prefix, info.package):
        return wire.REFUSED + b"another Python or another copy of kei"
    stale = changed(warm.files)
    if stale is not None:
        log.info("%s changed since the daemon started: stopping", stale)
        os.kill(info.pid, signal.SIGTERM)
        return wire.REFUSED + b"kei changed since the daemon started"
    if not os.path.isdir(request.cwd):
        return wire.REFUSED + b"working directory gone"
    return None


def _control(request: wire.Request, info: ServerInfo) -> bytes:
    """The answer to a ping or a stop."""
    if request.kind == "stop":
        os.kill(info.pid, signal.SIGTERM)
        return wire.STOPPING + str(info.pid).encode()
    fields = (info.pid, info.started, info.served, info.idle_s, info.package, info.prefix)
    return wire.PONG + b"\0".join(str(f).encode() for f in fields)


def _adopt(request: wire.Request, fds: list[int]) -> None:
    """Become the caller's process: its stdio, environment, directory, umask, zone."""
    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    os.environ.clear()
    os.environ.update(request.environ)
    time.tzset()
    os.chdir(request.cwd)
    os.umask(request.umask)
    encoding, _, errors = (os.environ.get("PYTHONIOENCODING") or "").partition(":")
    sys.stdin = _text(0, "r", encoding, errors)
    sys.stdout = _text(1, "w", encoding, errors)
    sys.stderr = _text(2, "w", encoding, errors or "backslashreplace")
    sys.argv = ["kei", *request.argv]


def _text(fd: int, mode: str, encoding: str, errors: str) -> TextIO:
    """A standard stream on ``fd`` as Python makes one at start-up."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    tty = raw.isatty()
    return io.TextIOWrapper(
        buffered,
        encoding=encoding or "utf-8",
        errors=errors or "strict",
        line_buffering=tty or fd == 2,
    )


def _run(argv: list[str], warm: Warm) -> int:
    """Run ``kei argv`` on the warm command tree; its exit code."""
    from kei.adapters.cli.entry import dispatch

    code = 0
    try:
        dispatch(argv, warm.command)
    except SystemExit as exc:
        code = _code(exc.code)
    except KeyboardInterrupt:
        code = 130
    finally:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    return code


def _code(value: object) -> int:
    """``SystemExit``'s code as the exit status Python would give it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    sys.stderr.write(f"{value}\n")
    return 1
