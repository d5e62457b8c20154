"""The one way kei starts worker processes: they never outlive kei, and never run the
caller's script.

Every kei worker (``verify-chain -j``, replay's verifiers, export's digest helper, the
parallel signer) is a ``multiprocessing`` "spawn" process from ``context()``, which
differs from the standard spawn context in two ways:

- **the caller's ``__main__`` is not imported in the worker.** Standard spawn re-imports
  the main script in every child, so a script without an ``if __name__ ==
  "__main__"`` guard runs again there (one 40-event append became 80 events). kei's
  workers run only kei's own functions, so they need nothing from it; the start-up
  data simply leaves the main module out (``_SpawnPopen``);
- **a worker dies with its parent.** On Linux it asks the kernel for SIGKILL when its
  parent goes (``prctl(PR_SET_PDEATHSIG)``), when it was started from the parent's
  main thread (the signal follows the starting *thread*); everywhere, a watcher
  thread exits the worker once the pipe it was started through reaches end of file,
  which happens when the parent dies however it dies (SIGKILL included).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing import context as mp_context
from multiprocessing import process as mp_process
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Final

SPARE_LOAD: Final = 0.5  # the load a core may carry and still count as spare
EXIT_ORPHANED: Final = 70
"""A worker's exit code when it stops because its parent is gone."""
PR_SET_PDEATHSIG: Final = 1
_MAIN_KEYS: Final = ("init_main_from_name", "init_main_from_path")


def context() -> mp_context.SpawnContext:
    """The context every kei worker is started from (see the module docstring)."""
    if sys.platform == "win32":  # pragma: no cover - kei runs on POSIX systems
        return multiprocessing.get_context("spawn")
    return _Context()


def start_sender(
    target: Callable[..., object], args: tuple[object, ...], name: str
) -> tuple[Connection, BaseProcess] | OSError:
    """A worker running ``target(*args, send)`` with the sending end of a one-way pipe,
    and the receiving end here; or why it could not start (the caller then works
    alone). The sending end is closed here either way, so the receiving end reaches
    end of file when the worker ends, however it ends."""
    ctx = context()
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(*args, send), daemon=True, name=name)
    try:
        process.start()
    except (OSError, RuntimeError) as exc:
        receive.close()
        return exc if isinstance(exc, OSError) else OSError(str(exc))
    finally:
        send.close()
    return receive, process


def spare_core() -> bool:
    """Is there a core a helper process would have to itself? At least two cores this
    process may run on, and a one-minute load average at least ``SPARE_LOAD`` below
    their count. A helper on a machine already busy competes with this process and
    costs more than it saves (a tenth of a second to start, its messages to encode):
    ``kei import claude-code`` then works alone."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average to read
        return cores >= 2
    return cores >= 2 and load <= cores - SPARE_LOAD


def die_with_parent(*, kernel_signal: bool) -> None:
    """Make this (worker) process end when its parent does; see the module docstring."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if kernel_signal:
        _ask_for_death_signal()
    if parent.pid is not None and os.getppid() != parent.pid:
        os._exit(EXIT_ORPHANED)  # the parent died before we asked
    sentinel = parent.sentinel
    if sentinel is not None:
        threading.Thread(
            target=_exit_when_readable, args=(sentinel,), name="kei-parent-watch", daemon=True
        ).start()


def _ask_for_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no libc to load: the watcher thread still works
        return


def _exit_when_readable(sentinel: int) -> None:
    """The parent's end of the start-up pipe closes only when the parent is gone."""
    wait([sentinel])
    os._exit(EXIT_ORPHANED)


if sys.platform != "win32":
    from multiprocessing import popen_spawn_posix, reduction, resource_tracker, spawn, util

    class _SpawnPopen(popen_spawn_posix.Popen):
        """CPython's spawn ``Popen._launch`` with the main module left out of the
        start-up data; the rest is the library's code, unchanged."""

        _fds: list[int]

        def _launch(self, process_obj: Any) -> None:
            tracker_fd: Any = resource_tracker.getfd()
            self._fds.append(tracker_fd)
            prep_data = spawn.get_preparation_data(process_obj._name)
            for key in _MAIN_KEYS:
                prep_data.pop(key, None)
            fp = io.BytesIO()
            mp_context.set_spawning_popen(self)
            try:
                reduction.dump(prep_data, fp)
                reduction.dump(process_obj, fp)
            finally:
                mp_context.set_spawning_popen(None)
            parent_r = child_w = child_r = parent_w = None
            try:
                parent_r, child_w = os.pipe()
                child_r, parent_w = os.pipe()
                cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
                self._fds.extend([child_r, child_w])
                exe: Any = spawn.get_executable()
                self.pid = util.spawnv_passfds(exe, cmd, self._fds)
                self.sentinel = parent_r
                with open(parent_w, "wb", closefd=False) as f:
                    f.write(fp.getbuffer())
            finally:
                fds_to_close = [fd for fd in (parent_r, parent_w) if fd is not None]
                self.finalizer = util.Finalize(self, util.close_fds, fds_to_close)  # type: ignore[attr-defined]
                for fd in (child_r, child_w):
                    if fd is not None:
                        os.close(fd)

    class _Process(mp_process.BaseProcess):
        _start_method = "spawn"
        _kei_kernel_signal = False

        @staticmethod
        def _Popen(process_obj: Any) -> Any:  # noqa: N802 - the library's name
            return _SpawnPopen(process_obj)

        @staticmethod
        def _after_fork() -> None:
            return None

        def start(self) -> None:
            # PR_SET_PDEATHSIG fires when the starting thread ends: only ask for it
            # when that thread is the main one (it ends with the process).
            self._kei_kernel_signal = threading.current_thread() is threading.main_thread()
            super().start()

        def run(self) -> None:
            die_with_parent(kernel_signal=self._kei_kernel_signal)
            super().run()

    class _Context(mp_context.SpawnContext):
        Process = _Process  # type: ignore[assignment]
