"""Network namespaces for the tunnel tests (tests/net): see tests/net/conftest.py.

``NetnsPair`` (two namespaces joined by veth), ``need_tools`` and ``skip_tunnel`` (skips
whose reason says "tunnel test", which ``KEI_REQUIRE_TUNNELS=1`` turns into failures),
``make_pair`` / ``remove_pair``. Imported by name (tests/helpers is on the path).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pytest

REQUIRE_ENV = "KEI_REQUIRE_TUNNELS"
SKIP_WORD = "tunnel test"


def skip_tunnel(reason: str) -> None:
    """Skip with a reason ``KEI_REQUIRE_TUNNELS=1`` turns into a failure."""
    pytest.skip(f"{SKIP_WORD}: {reason}")


def need_tools(*names: str) -> None:
    """Skip (a tunnel test) unless every program in ``names`` is on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        skip_tunnel(f"needs {', '.join(missing)} (apt-get install the package; .ci/run does)")


@dataclass(frozen=True)
class NetnsPair:
    """Two namespaces joined by a veth pair; see the module docstring."""

    a: str
    b: str
    a_addr: str
    b_addr: str
    prefix: int
    token: str

    def run(
        self, ns: str, *argv: str, check: bool = True, timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """``argv`` inside namespace ``ns`` (``ip netns exec``), text output captured."""
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
            check=check, timeout=timeout, env=env,
        )  # fmt: skip

    def ping(self, ns: str, addr: str, count: int = 3) -> bool:
        """Whether ``addr`` answers ICMP echo from inside ``ns`` (``iputils-ping``)."""
        done = self.run(ns, "ping", "-c", str(count), "-i", "0.2", "-W", "2", addr, check=False)
        return done.returncode == 0


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=check, timeout=30)


def _can_netns() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    probe = f"kei-probe-{uuid.uuid4().hex[:8]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()[:200]}"
    _ip("netns", "del", probe, check=False)
    return None


def _kill_all(namespaces: Sequence[str]) -> None:
    """End every process still in ``namespaces`` (by pid), TERM then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = []
        for ns in namespaces:
            listed = _ip("netns", "pids", ns, check=False)
            pids += [int(p) for p in listed.stdout.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def netns_pair_made() -> Iterator[NetnsPair]:
    """Two fresh namespaces joined by veth (10.231.0.1/24 in a, 10.231.0.2/24 in b),
    removed on exit whatever happened; skips (a tunnel test) where they cannot be made."""
    why = _can_netns()
    if why is not None:
        skip_tunnel(why)
    token = uuid.uuid4().hex[:8]
    pair = NetnsPair(a=f"kei-{token}-a", b=f"kei-{token}-b", a_addr="10.231.0.1",
                     b_addr="10.231.0.2", prefix=24, token=token)  # fmt: skip
    made: list[str] = []
    try:
        for ns in (pair.a, pair.b):
            _ip("netns", "add", ns)
            made.append(ns)
        va, vb = f"kv{token}a", f"kv{token}b"
        _ip("link", "add", va, "netns", pair.a, "type", "veth", "peer", "name", vb,
            "netns", pair.b)  # fmt: skip
        for ns, dev, addr in ((pair.a, va, pair.a_addr), (pair.b, vb, pair.b_addr)):
            _ip("-n", ns, "addr", "add", f"{addr}/{pair.prefix}", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        _kill_all(made)
        for ns in made:
            _ip("netns", "del", ns, check=False)
