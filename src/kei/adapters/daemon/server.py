"""The daemon's life: take the lock, warm up, listen, fork a worker per connection, and
leave after ``idle`` seconds without one (or on SIGTERM), removing its socket.

Run as ``python -m kei.adapters.daemon.server --dir DIR [--idle SECONDS]`` (what
``kei daemon start`` and ``KEI_DAEMON=auto`` do) or through :func:`serve`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType

from kei.adapters.daemon.place import (
    lock_path,
    log_path,
    package_dir,
    private_problem,
    socket_path,
)
from kei.adapters.daemon.warm import Warm, warm
from kei.adapters.daemon.worker import ServerInfo, serve_one
from kei.errors import InputError

log = logging.getLogger(__name__)
BACKLOG = 128


def prepare(folder: str) -> None:
    """Create ``folder`` (mode 0700) if missing; InputError when it is not private."""
    try:
        os.makedirs(folder, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(
            f"cannot create {folder} for the kei daemon: {exc.strerror}",
            hint="set KEI_DAEMON_DIR to a folder you can create",
        ) from None
    problem = private_problem(folder)
    if problem is not None:
        raise InputError(
            f"cannot use {folder} for the kei daemon: {problem}",
            hint="remove it, or set KEI_DAEMON_DIR to a private folder",
        )


def serve(folder: str, idle_s: float) -> bool:
    """Serve until idle or stopped; False (at once) when another daemon holds the lock."""
    prepare(folder)
    lock = os.open(lock_path(folder), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return False
    try:
        state = warm(package_dir())
        info = ServerInfo(os.getpid(), time.time(), 0, idle_s, package_dir(), sys.prefix)
        with _listening(socket_path(folder)) as listener:
            log.info("kei daemon %d listening on %s", info.pid, socket_path(folder))
            _loop(listener, [listener.fileno(), lock], state, info)
    finally:
        os.close(lock)
    return True


@contextlib.contextmanager
def _listening(path: str) -> Iterator[socket.socket]:
    """A socket at ``path`` only this user can connect to; removed at the end if it is
    still this one (the lock is held, so any file already there is a dead daemon's)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    inode = os.stat(path).st_ino
    listener.listen(BACKLOG)
    try:
        yield listener
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                os.unlink(path)


def _loop(listener: socket.socket, inherited: list[int], state: Warm, info: ServerInfo) -> None:
    signal.signal(signal.SIGTERM, _stopper(info.pid))
    signal.signal(signal.SIGCHLD, _reap)
    listener.settimeout(info.idle_s or None)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            log.info("idle for %s s: stopping", info.idle_s)
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log.warning("accept failed: %s", exc)
                time.sleep(0.1)
                continue
            raise
        info.served += 1
        if os.fork() == 0:
            serve_one(conn, inherited, state, info)
        conn.close()


def _stopper(pid: int) -> Callable[[int, FrameType | None], None]:
    """SIGTERM's handler: unwind the daemon (removing its socket); in a fork that has
    not yet reset it, just end that fork, never the daemon's clean-up."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != pid:
            os._exit(128 + signum)
        raise SystemExit(0)

    return stop


def _reap(signum: int, frame: FrameType | None) -> None:
    """Collect every finished worker (they report to their clients, not here)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kei-daemon", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="the daemon's private folder")
    parser.add_argument("--idle", type=float, default=3600.0, help="seconds; 0 = never")
    args = parser.parse_args(argv)
    if not 0 <= args.idle <= 10**9:  # also refuses nan
        parser.error(f"--idle must be 0 to 1e9 seconds, got {args.idle}")
    try:
        prepare(args.dir)
    except InputError as exc:
        sys.stderr.write(f"kei: error: {exc}\n")
        sys.exit(2)
    logging.basicConfig(
        filename=log_path(args.dir),
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(message)s",
    )
    serve(args.dir, args.idle)


if __name__ == "__main__":
    main()
