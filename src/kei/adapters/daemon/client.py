"""The calling side: hand a ``kei`` command to a running daemon, or say it cannot.

``run(argv)`` returns the command's exit code when a daemon ran it, and None when the
caller must run it itself: no daemon, ``KEI_DAEMON=off``, a command that must not run
in a daemon (``EXCLUDED``), a folder that is not private, a daemon of another kei, a
daemon that refused or did not answer. A command starts only after this side said
"go", and this side falls back only before saying it, so a command never runs twice.

It imports ``_socket`` and ``_signal``, not ``socket``/``signal`` (their ``enum``
import alone is a third of a fast command), and nothing else of kei but
``place.py`` and ``wire.py``.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import _socket
import os
import sys

from kei.adapters.daemon import wire
from kei.adapters.daemon.place import (
    MODE_VARIABLE,
    daemon_dir,
    package_dir,
    private_problem,
    socket_path,
)

# Long-running or privileged commands, and the daemon's own: always in-process. A
# word anywhere in argv counts, so a value that happens to be one of them only costs
# the fast path, never correctness.
EXCLUDED = frozenset({"daemon", "mcp", "notify", "net", "serve"})
ANSWER_TIMEOUT_S = 5.0
LOST = 70
HOOK = ["hook", "claude-code"]
FORWARDED: tuple[int, ...] = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)


def run(argv: list[str]) -> int | None:
    """The exit code of ``kei argv`` run by this user's daemon, or None (run it here)."""
    mode = os.environ.get(MODE_VARIABLE, "")
    if mode == "off" or EXCLUDED.intersection(argv):
        return None
    folder = daemon_dir(os.environ)
    conn = _connect(folder)
    if conn is None:
        if mode == "auto":
            start_in_background(folder)
        return None
    try:
        return _converse(conn, argv)
    finally:
        conn.close()


def _connect(folder: str) -> _socket.socket | None:
    if private_problem(folder) is not None:
        return None
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    conn.settimeout(ANSWER_TIMEOUT_S)
    try:
        conn.connect(socket_path(folder))
    except OSError:
        conn.close()
        return None
    return conn


def _converse(conn: _socket.socket, argv: list[str]) -> int | None:
    """Send the request, wait for the start, say go, wait for the exit code."""
    umask = os.umask(0o022)
    os.umask(umask)
    request = wire.Request("run", sys.prefix, package_dir(), os.getcwd(), umask, argv,
                           dict(os.environ))  # fmt: skip
    data = wire.encode(request)
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    try:
        sent = conn.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        conn.sendall(data[sent:])
        answer = _receive(conn, 5)
        if answer[:1] != wire.STARTED or len(answer) != 5:
            return None
        conn.sendall(wire.GO)
    except OSError:
        return None
    return _wait(conn, int.from_bytes(answer[1:], "big"), argv)


def _wait(conn: _socket.socket, pid: int, argv: list[str]) -> int:
    """The exit code the command's process sends last; signals sent here go to it."""

    def forward(signum: int, frame: object) -> None:
        try:  # noqa: SIM105 (contextlib is an import this start-up does without)
            os.kill(pid, signum)
        except OSError:
            pass

    for signum in FORWARDED:
        _signal.signal(signum, forward)
    conn.settimeout(None)
    try:
        tail = _receive(conn, 2)
    except OSError:
        tail = b""
    if len(tail) == 2 and tail[:1] == wire.EXITED:
        return tail[1]
    if argv == HOOK:  # a hook always exits 0 and never blocks the agent: say it in its log
        _hook_lost(pid)
        return 0
    sys.stderr.write(
        f"kei: error: the daemon's process for this command (pid {pid}) ended without an"
        " exit code (killed?); check `kei events tail` before running it again\n"
    )
    return LOST


def _hook_lost(pid: int) -> None:
    """One line in ``$KEI_HOME/hook.log``, as the hook logs its own failures."""
    from kei.adapters.cli.config import home_of
    from kei.adapters.hooks.hooklog import log_failure

    log_failure(
        home_of(os.environ), "daemon", f"the daemon's process {pid} ended without an exit code"
    )


def _receive(conn: _socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only when the other side closed."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def start_in_background(folder: str) -> None:
    """Start a daemon for later commands (``KEI_DAEMON=auto``), without waiting for it;
    a daemon already starting elsewhere makes this one exit at once (its lock)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "kei.adapters.daemon.server", "--dir", folder],
            dict(os.environ),
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)],
            setsid=True,
        )
    except OSError:
        pass
    finally:
        os.close(devnull)
