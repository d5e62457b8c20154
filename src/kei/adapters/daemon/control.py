"""``kei daemon start|stop|status`` without the CLI: start a daemon and wait until it
answers, ask one how it is, ask it to stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from msgspec import Struct

from kei.adapters.daemon import wire
from kei.adapters.daemon.place import log_path, package_dir, private_problem, socket_path
from kei.adapters.daemon.server import prepare
from kei.errors import InputError

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class Status(Struct, frozen=True):
    """A running daemon as a ping reports it."""

    pid: int
    started_us: int
    served: int
    idle_s: float
    socket: str


def status(folder: str) -> Status | None:
    """The daemon listening in ``folder``, or None when none answers."""
    answer = _ask(folder, "ping")
    if answer[:1] != wire.PONG:
        return None
    pid, started, served, idle_s, _, _ = answer[1:].decode().split("\0")
    return Status(int(pid), round(float(started) * 1e6), int(served), float(idle_s),
                  socket_path(folder))  # fmt: skip


def start(folder: str, idle_s: float) -> Status:
    """A daemon in ``folder``: the one running, else a new one once it answers."""
    prepare(folder)
    running = status(folder)
    if running is not None:
        return running
    command = [sys.executable, "-m", "kei.adapters.daemon.server", "--dir", folder,
               "--idle", str(idle_s)]  # fmt: skip
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        running = status(folder)
        if running is not None:
            return running
        if child.poll() not in (None, 0):
            break
        time.sleep(0.05)
    raise InputError("the kei daemon did not start", hint=f"its log is {log_path(folder)}")


def stop(folder: str) -> int | None:
    """Stop the daemon in ``folder`` and wait for it to go: its pid, or None if none ran."""
    answer = _ask(folder, "stop")
    if answer[:1] != wire.STOPPING:
        return None
    pid = int(answer[1:].decode())
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and status(folder) is not None:
        time.sleep(0.05)
    return pid


def _ask(folder: str, kind: str) -> bytes:
    """The daemon's whole answer to a ``kind`` request; empty when nothing answered."""
    if private_problem(folder) is not None:
        return b""
    request = wire.Request(kind, sys.prefix, package_dir(), os.getcwd(), 0, [], {})
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5.0)
            conn.connect(socket_path(folder))
            conn.sendall(wire.encode(request))
            conn.shutdown(socket.SHUT_WR)
            return b"".join(iter(lambda: conn.recv(65536), b""))
    except OSError:
        return b""
