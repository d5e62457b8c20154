"""WireGuard through ``wg-quick`` and ``wg``: a :class:`NetworkMode`.

``configure`` writes the ``.conf`` made from the settings and key files
(``wireguard_conf.render``) 0600 into ``$KEI_HOME/run/net/wireguard/<interface>.conf``
(``wg-quick`` takes the interface name from the file name), takes an interface of that
name down first if one is up (so a changed configuration applies whole), and runs
``wg-quick up``. Where the kernel has no WireGuard (no ``/sys/module/wireguard``) or the
settings say so, ``WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go`` makes ``wg-quick``
start the userspace implementation. ``teardown`` runs ``wg-quick down`` when the
interface exists (a tunnel that is down is torn down already) and removes the file, so
the private key rests on disk only in the file the user named.

``peers`` runs ``wg show <interface> dump`` and hands its text to
``kei.domain.net.dump.parse_dump``, which drops the interface line and the pre-shared
key column unread. The dump's text is never logged, stored or put in an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Final

from kei.adapters.net import process
from kei.adapters.net import settings as st
from kei.adapters.net.mode import ModeBase
from kei.adapters.net.wireguard_conf import WgSettings, effective, parse_wireguard, render
from kei.domain.net.dump import parse_dump
from kei.domain.net.values import ActionResult, ObservedPeer
from kei.errors import NetConfigError, NetError

log = logging.getLogger(__name__)

KERNEL_MODULE: Final = Path("/sys/module/wireguard")
USERSPACE_ENV: Final = "WG_QUICK_USERSPACE_IMPLEMENTATION"


class WireGuardMode(ModeBase):
    """One WireGuard tunnel of net.toml."""

    MODE = "wireguard"
    settings: WgSettings

    def __init__(self, s: WgSettings, base_dir: Path, *, timeout_s: float = 30.0) -> None:
        self.settings, self.base_dir, self.timeout_s = s, base_dir, timeout_s

    @property
    def conf_path(self) -> Path:
        return self.base_dir / "run" / "net" / "wireguard" / f"{self.settings.interface}.conf"

    def config_sha256(self) -> str:
        return st.config_digest(effective(self.settings))

    def env(self) -> dict[str, str]:
        """``WG_QUICK_USERSPACE_IMPLEMENTATION`` when wireguard-go is to be used."""
        choice = self.settings.userspace
        if choice == "wireguard-go" or (choice == "auto" and not KERNEL_MODULE.exists()):
            return {USERSPACE_ENV: "wireguard-go"}
        return {}

    def _run(self, *argv: str, env: Mapping[str, str] | None = None) -> process.Completed:
        return process.run(argv, netns=self.settings.netns, env=env, timeout_s=self.timeout_s)

    def exists(self) -> bool:
        """Whether the interface exists (in the tunnel's namespace)."""
        return self.is_up() is True

    def is_up(self) -> bool | None:
        """Whether the interface exists (the reconciler's drift check); None when ``ip``
        itself cannot run, so a missing tool is never taken for a lost tunnel."""
        done = self._run("ip", "-o", "link", "show", "dev", self.settings.interface)
        return None if done.exit_code is None else done.ok

    def configure(self) -> ActionResult:
        try:
            text = render(self.settings)
            st.write_private(st.runtime_dir(self.base_dir, "wireguard") / self.conf_path.name,
                             text)  # fmt: skip
        except NetConfigError as exc:
            return ActionResult(ok=False, stderr_tail=str(exc))
        except OSError as exc:
            return ActionResult(ok=False, stderr_tail=f"{self.conf_path}: cannot write "
                                                      f"({exc.strerror or exc})")  # fmt: skip
        env = self.env()
        if self.exists():
            self._run("wg-quick", "down", str(self.conf_path), env=env)
        done = self._run("wg-quick", "up", str(self.conf_path), env=env)
        if not done.ok:
            self._forget()
        return ActionResult(ok=done.ok, exit_code=done.exit_code, stderr_tail=done.stderr,
                            backend_version=self._version() if done.ok else None)  # fmt: skip

    def teardown(self) -> ActionResult:
        if not self.exists():
            self._forget()
            return ActionResult(ok=True)
        if not self.conf_path.exists():  # removed by hand: wg-quick down needs the file
            result = self._take_down_without_file()
        else:
            done = self._run("wg-quick", "down", str(self.conf_path), env=self.env())
            result = ActionResult(ok=done.ok, exit_code=done.exit_code, stderr_tail=done.stderr)
        if result.ok:
            self._forget()
        return result

    def _take_down_without_file(self) -> ActionResult:
        done = self._run("ip", "link", "delete", "dev", self.settings.interface)
        return ActionResult(ok=done.ok, exit_code=done.exit_code, stderr_tail=done.stderr)

    def peers(self) -> list[ObservedPeer]:
        done = self._run("wg", "show", self.settings.interface, "dump")
        if not done.ok:
            first = (done.stderr.strip().splitlines() or ["no answer"])[0][:200]
            raise NetError(f"wg show {self.settings.interface}: exit {done.exit_code}: {first}")
        found = parse_dump(done.stdout, time.time_ns() // 1000)
        if found.skipped:
            log.warning("wg show %s: %d line(s) not understood (lines %s)",
                        self.settings.interface, len(found.skipped),
                        ", ".join(map(str, found.skipped[:10])))  # fmt: skip
        return list(found.peers)

    def _forget(self) -> None:
        with suppress(FileNotFoundError):
            self.conf_path.unlink()

    def _version(self) -> str | None:
        done = process.run(["wg", "--version"], timeout_s=self.timeout_s)
        words = done.stdout.split()
        version = words[1] if done.ok and len(words) > 1 else None
        if version and self.env():
            return f"wireguard-tools {version} (wireguard-go)"
        return f"wireguard-tools {version}" if version else None


def build_wireguard(name: str, table: Mapping[str, Any], base_dir: Path) -> WireGuardMode:
    """The registry's builder (``kei.adapters.net.modes``)."""
    return WireGuardMode(parse_wireguard(name, table, base_dir), base_dir)
