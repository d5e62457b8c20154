"""The OpenVPN network mode: write the configuration, start or stop OpenVPN, read peers.

Why two ways to start it: upstream ran ``systemctl start openvpn-server@<name>``, which
assumes systemd is PID 1 (false in containers, and on many CI machines). Where systemd
runs (``launch = "auto"`` finds out), kei writes ``/etc/openvpn/<role>/<name>.conf`` and
uses Debian's ``openvpn-<role>@<name>`` unit; elsewhere it starts ``openvpn --config …
--daemon --writepid …`` itself and stops it through the management socket. Peers come
from the management socket (:mod:`kei.adapters.net.openvpn_mgmt`), never from a log.
kei never overwrites a configuration file it did not write.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from kei.adapters.net.mode import ModeBase
from kei.adapters.net.openvpn_config import HEADER, OpenVpnSettings, read_settings
from kei.adapters.net.openvpn_mgmt import TIMEOUT, ManagementClient
from kei.adapters.net.openvpn_status import (
    parse_client_counters,
    parse_server_status,
    parse_state,
)
from kei.domain.net.values import ActionResult, ObservedPeer
from kei.errors import KeiError, NetError

__all__ = ["OpenVpnMode", "build_openvpn"]

log = logging.getLogger(__name__)

TAIL: Final = 2000
KEI_MARK: Final = HEADER.split("{", 1)[0]


def _tail(*texts: str) -> str:
    return "\n".join(t.strip() for t in texts if t.strip())[-TAIL:]


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` (0600) whole or not at all: a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return None


def _remove_socket(path: Path) -> None:
    """Remove a stale management socket, and nothing else a setting may have named."""
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


class OpenVpnMode(ModeBase):
    """A tunnel of ``mode = "openvpn"``; see the module docstring and docs/net.md."""

    MODE = "openvpn"
    settings: OpenVpnSettings

    def __init__(self, settings: OpenVpnSettings, *, timeout: float = TIMEOUT) -> None:
        self.settings, self.timeout = settings, timeout

    def config_sha256(self) -> str:
        return self.settings.config_sha256()

    def management(self) -> ManagementClient:
        """A client for this tunnel's management socket (connect with ``with``)."""
        return ManagementClient(self.settings.management_socket, timeout=self.timeout)

    # -- configure / teardown

    def configure(self) -> ActionResult:
        try:
            self.settings.config_sha256()  # every key file readable before anything starts
        except KeiError as exc:
            return ActionResult(ok=False, stderr_tail=str(exc))
        if self.settings.launch == "systemctl":
            return self._configure_systemctl()
        return self._configure_direct()

    def teardown(self) -> ActionResult:
        if self.settings.launch == "systemctl":
            return self._systemctl("stop")
        return self._teardown_direct()

    # -- direct: openvpn --daemon

    @property
    def _conf(self) -> Path:
        return self.settings.runtime_dir / "openvpn.conf"

    @property
    def _pidfile(self) -> Path:
        return self.settings.runtime_dir / "openvpn.pid"

    @property
    def _logfile(self) -> Path:
        return self.settings.runtime_dir / "openvpn.log"

    def running_pid(self) -> int | None:
        """The pid of this tunnel's own openvpn (its pidfile, checked against /proc)."""
        try:
            pid = int(self._pidfile.read_text().strip() or "0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and str(self._conf).encode() in cmdline.split(b"\0") else None

    def _configure_direct(self) -> ActionResult:
        text = self.settings.render()
        pid = self.running_pid()
        if pid is not None:
            if _read(self._conf) == text:
                return ActionResult(ok=True, backend_version=_version())
            stopped = self._teardown_direct()
            if not stopped.ok:
                return stopped
        program = _program()
        if program is None:
            return ActionResult(
                ok=False, stderr_tail="openvpn is not installed (apt-get install openvpn)"
            )
        self.settings.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(self._conf, text)
        self._pidfile.unlink(missing_ok=True)
        _remove_socket(self.settings.management_socket)
        prefix = ["ip", "netns", "exec", self.settings.netns] if self.settings.netns else []
        argv = [*prefix, program, "--config", str(self._conf), "--daemon", f"kei-openvpn-{self.name}",
                "--writepid", str(self._pidfile), "--log", str(self._logfile)]  # fmt: skip
        try:
            done = _run(argv, self.settings.start_timeout)
        except subprocess.TimeoutExpired:
            return ActionResult(
                ok=False,
                stderr_tail=f"openvpn did not detach within {self.settings.start_timeout} s",
            )
        if done.returncode != 0:
            return ActionResult(
                ok=False,
                exit_code=done.returncode,
                stderr_tail=_tail(done.stderr, self._log_tail()),
            )
        return self._await_management(done.returncode)

    def _await_management(self, code: int) -> ActionResult:
        """Wait until the management socket answers (up) or the daemon died (failed)."""
        deadline = time.monotonic() + self.settings.start_timeout
        while time.monotonic() < deadline:
            try:
                with self.management() as client:
                    running = client.version()  # "OpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL…"
                version = " ".join(running.split()[:2]) if running else None
                return ActionResult(ok=True, exit_code=code, backend_version=version)
            except NetError:
                pass
            if self._pidfile.exists() and self.running_pid() is None:
                break
            time.sleep(0.1)
        why = _tail("openvpn did not open its management socket", self._log_tail())
        self._teardown_direct()  # a daemon kei cannot reach is not left running
        return ActionResult(ok=False, exit_code=code, stderr_tail=why)

    def _log_tail(self) -> str:
        try:
            with self._logfile.open("rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - TAIL))
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _teardown_direct(self) -> ActionResult:
        pid = self.running_pid()
        if pid is not None:
            try:
                with self.management() as client:
                    client.signal("SIGTERM")
            except NetError as exc:
                log.info("openvpn %s: %s; sending SIGTERM to pid %d", self.name, exc, pid)
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.settings.start_timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                return ActionResult(
                    ok=False,
                    stderr_tail=f"openvpn (pid {pid}) still runs {self.settings.start_timeout} s after SIGTERM",
                )
        self._pidfile.unlink(missing_ok=True)
        _remove_socket(self.settings.management_socket)
        return ActionResult(ok=True)

    # -- systemctl: Debian's openvpn-server@ / openvpn-client@ units

    def _configure_systemctl(self) -> ActionResult:
        path = self.settings.config_dir / f"{self.name}.conf"
        text = self.settings.render()
        try:
            existing = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = None
        except (OSError, UnicodeError) as exc:
            return ActionResult(ok=False, stderr_tail=f"cannot read {path}: {exc}")
        if existing is not None and not existing.startswith(KEI_MARK):
            return ActionResult(
                ok=False,
                stderr_tail=f"{path} exists and was not written by kei; refusing to overwrite it "
                "(move it away, or name another config_dir)",
            )
        if existing != text:
            _write_private(path, text)
        return self._systemctl("start" if existing == text else "restart")

    def _systemctl(self, verb: str) -> ActionResult:
        program = shutil.which("systemctl")
        if program is None:
            return ActionResult(
                ok=False, stderr_tail='systemctl is not on PATH (launch = "systemctl")'
            )
        try:
            done = _run([program, verb, self.settings.unit], 60)
        except subprocess.TimeoutExpired:
            return ActionResult(
                ok=False, stderr_tail=f"systemctl {verb} did not return within 60 s"
            )
        return ActionResult(
            ok=done.returncode == 0, exit_code=done.returncode,
            stderr_tail=_tail(done.stderr), backend_version=_version(),
        )  # fmt: skip

    # -- observation

    def peers(self) -> list[ObservedPeer]:
        with self.management() as client:
            if self.settings.role == "server":
                return parse_server_status(client.status())
            state, address, remote = parse_state(client.lines("state"))
            if state != "CONNECTED":
                return []
            rx, tx = parse_client_counters(client.status())
        peer_id = self.settings.server_name or f"{self.settings.remote}:{self.settings.port}"
        addresses = (address,) if address else ()
        return [
            ObservedPeer(
                peer_id=peer_id, endpoint=remote, addresses=addresses, rx_bytes=rx, tx_bytes=tx
            )
        ]

    def kill(self, peer: str) -> str:
        """Disconnect a server's clients with common name ``peer`` (or at ``ip:port``)."""
        with self.management() as client:
            return client.kill(peer)


def _program() -> str | None:
    return shutil.which("openvpn") or shutil.which("openvpn", path="/usr/sbin:/usr/local/sbin")


def _version() -> str | None:
    """``OpenVPN 2.6.14``, from ``openvpn --version``'s first line."""
    program = _program()
    if program is None:
        return None
    try:
        first = _run([program, "--version"], 10).stdout.partition("\n")[0]
    except (OSError, subprocess.TimeoutExpired):
        return None
    return " ".join(first.split()[:2]) or None


def build_openvpn(name: str, table: Mapping[str, object], base_dir: Path) -> OpenVpnMode:
    """The registry's builder: tunnel ``name`` from its settings table, paths relative to
    ``base_dir``; :class:`~kei.errors.NetConfigError` for a bad table."""
    return OpenVpnMode(read_settings(name, dict(table), base_dir))
