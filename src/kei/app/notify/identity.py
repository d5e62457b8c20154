"""Who holds a claim, and whether that process is gone.

A claim (``notify.attempted``) names its notifier as ``host:pid:start:machine``: the
host name (for people), the process id and its start time in clock ticks (so a reused
pid is not mistaken for the claimant), and ``machine``, a short hash of this boot's id
and process-id namespace. Another notifier with the same ``machine`` can ask the
kernel whether the claimant still runs (``claim_gone``) and treat its claim as in
doubt at once, instead of waiting for the lease: that is what makes a restart after
``kill -9`` pick up where the killed notifier stopped. From any other machine, or
when in any doubt, only the lease decides.
"""

from __future__ import annotations

import hashlib
import os
import socket
from functools import cache
from pathlib import Path

from kei.adapters.workers import scratch


@cache
def machine() -> str:
    """This boot and pid namespace, as 12 hex digits."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = socket.gethostname()
    space = scratch.pid_namespace() or ""
    return hashlib.sha256(f"{boot}\n{space}".encode()).hexdigest()[:12]


def notifier_id(pid: int | None = None) -> str:
    """This process as a claim names it."""
    pid = os.getpid() if pid is None else pid
    host = "".join(c for c in socket.gethostname() if c.isprintable() and c != ":")[:64]
    return f"{host or 'host'}:{pid}:{scratch.start_time(pid) or '-'}:{machine()}"


def claim_gone(notifier: str | None) -> bool:
    """True only when ``notifier`` ran on this machine and its process is gone."""
    parts = (notifier or "").rsplit(":", 3)
    if len(parts) != 4 or parts[3] != machine() or not parts[1].isdigit():
        return False
    started = None if parts[2] == "-" else parts[2]
    return not scratch.alive(int(parts[1]), started)
