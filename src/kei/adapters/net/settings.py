"""``$KEI_HOME/net.toml``: the tunnels kei may bring up, and the reconciler's settings.

::

    [reconciler]                  # all optional (kei.domain.net.policy.NetPolicy)
    poll_s = 5                    # seconds between looks at each tunnel
    observe_every_s = 300         # a peer's counters are recorded at least this often...
    bytes_threshold = 1048576     # ...or when they moved by this many bytes
    retry_s = 5                   # first retry of a failed attempt; doubles each time
    max_attempts = 5              # per intent
    lease_s = 120                 # a claim without an outcome is in doubt after this

    [tunnels.home]                # one table per tunnel: stream net/<mode>/home
    mode = "wireguard"            # wireguard | ipsec | openvpn (kei.adapters.net.modes)
    public = false                # accepts peers from the open network
    allowed_ports = [51820]
    netns = "vpn"                 # optional: run the tunnel inside this network namespace
    ...                           # the mode's own keys (docs/net.md)

Key and secret material is only ever named by a file path (``*_file`` keys; relative
paths are taken from ``$KEI_HOME``), never written inline: the file holds it, the
adapter reads it at ``configure`` time, and only its digest reaches the log. The helpers
below are shared by every mode's builder; every mistake is one ``NetConfigError`` line
naming the file, the tunnel and the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from msgspec import Struct

from kei.adapters.files.toml import read_toml
from kei.domain.events.net import MODES
from kei.domain.net.policy import NetPolicy
from kei.errors import NetConfigError

FILE_NAME: Final = "net.toml"
MAX_BYTES: Final = 256 * 1024
MAX_SECRET_BYTES: Final = 64 * 1024
COMMON_KEYS: Final = frozenset({"mode", "public", "allowed_ports", "netns"})
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NETNS: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_POLICY: Final = {  # key: (least, most, is whole)
    "poll_s": (0.05, 3600.0, False), "observe_every_s": (1.0, 86400.0, False),
    "bytes_threshold": (1, 1 << 50, True), "retry_s": (0.01, 3600.0, False),
    "max_attempts": (1, 1000, True), "lease_s": (1.0, 86400.0, False),
}  # fmt: skip
HINT: Final = "see docs/net.md for net.toml"


class Tunnel(Struct, frozen=True, kw_only=True):
    """One ``[tunnels.NAME]`` table, not yet built into a mode."""

    name: str
    mode: str
    table: Mapping[str, Any]
    source: str

    def where(self, key: str) -> str:
        """``<file>: [tunnels.NAME]: key KEY`` for error messages."""
        return f"{self.source}: [tunnels.{self.name}]: key {key}"


class NetSettings(Struct, frozen=True, kw_only=True):
    """What net.toml says: the tunnels by name and the reconciler's policy."""

    source: str
    base_dir: Path
    tunnels: Mapping[str, Tunnel] = {}
    policy: NetPolicy = NetPolicy()


def net_toml_path(home: Path) -> Path:
    return home / FILE_NAME


def load(home: Path) -> NetSettings:
    """``$KEI_HOME/net.toml`` read once (absent: no tunnels)."""
    path = net_toml_path(home)
    if not path.exists():
        return NetSettings(source=str(path), base_dir=home)
    return parse(read_toml(path, MAX_BYTES, NetConfigError), str(path), home)


def parse(data: Mapping[str, Any], source: str, base_dir: Path) -> NetSettings:
    """The parsed file: tables checked, modes known; mode keys are the builders'."""
    unknown = sorted(set(data) - {"tunnels", "reconciler"})
    if unknown:
        raise NetConfigError(f"{source}: {unknown[0]}: not a net.toml table "
                             "(tables: tunnels, reconciler)", hint=HINT)  # fmt: skip
    tables = data.get("tunnels", {})
    if not isinstance(tables, dict):
        raise NetConfigError(f"{source}: tunnels must be tables [tunnels.NAME]", hint=HINT)
    tunnels = {name: _tunnel(name, table, source) for name, table in tables.items()}
    return NetSettings(source=source, base_dir=base_dir, tunnels=tunnels,
                       policy=_policy(data.get("reconciler", {}), source))  # fmt: skip


def _tunnel(name: str, table: object, source: str) -> Tunnel:
    if not _NAME.fullmatch(name):
        raise NetConfigError(f"{source}: [tunnels.{name[:40]!r}]: a tunnel name is 1-63 "
                             "letters, digits, '_', '.', '-'", hint=HINT)  # fmt: skip
    if not isinstance(table, dict):
        raise NetConfigError(f"{source}: tunnels.{name} must be a table", hint=HINT)
    mode = table.get("mode")
    if mode not in MODES:
        raise NetConfigError(f"{source}: [tunnels.{name}]: key mode: needs one of "
                             f"{', '.join(MODES)}", hint=HINT)  # fmt: skip
    return Tunnel(name=name, mode=mode, table=table, source=source)


def _policy(table: object, source: str) -> NetPolicy:
    if not isinstance(table, dict):
        raise NetConfigError(f"{source}: reconciler must be a table ([reconciler])", hint=HINT)
    for key, value in table.items():
        if key not in _POLICY:
            raise NetConfigError(f"{source}: [reconciler]: key {key}: not a reconciler key "
                                 f"(keys: {', '.join(sorted(_POLICY))})", hint=HINT)  # fmt: skip
        low, high, whole = _POLICY[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (whole and not isinstance(value, int)) or not low <= value <= high:
            what = "a whole number" if whole else "a number"
            raise NetConfigError(f"{source}: [reconciler]: key {key}: needs {what} from "
                                 f"{low} to {high}", hint=HINT)  # fmt: skip
    return NetPolicy(**table)


# -- helpers for the modes' builders ------------------------------------------------------


def check_keys(t: Tunnel, allowed: frozenset[str]) -> None:
    """Refuse a key the mode does not know (a typo must not be ignored)."""
    unknown = sorted(set(t.table) - allowed - COMMON_KEYS)
    if unknown:
        raise NetConfigError(f"{t.where(unknown[0])}: not a {t.mode} key "
                             f"(keys: {', '.join(sorted(allowed | COMMON_KEYS))})",
                             hint=HINT)  # fmt: skip


def text(t: Tunnel, key: str, pattern: re.Pattern[str], default: str | None = None) -> str | None:
    """A string value that must match ``pattern`` whole (None when absent, no default)."""
    value = t.table.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise NetConfigError(f"{t.where(key)}: {str(value)[:60]!r} is not allowed here",
                             hint=HINT)  # fmt: skip
    return value


def whole(t: Tunnel, key: str, low: int, high: int) -> int | None:
    value = t.table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NetConfigError(f"{t.where(key)}: needs a whole number from {low} to {high}",
                             hint=HINT)  # fmt: skip
    return value


def strings(t: Tunnel, key: str, table: Mapping[str, Any] | None = None) -> list[str]:
    """A list of strings (absent: [])."""
    value = (t.table if table is None else table).get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NetConfigError(f"{t.where(key)}: needs a list of strings", hint=HINT)
    return list(value)


def common(t: Tunnel) -> tuple[bool, tuple[int, ...], str | None]:
    """``public``, ``allowed_ports`` and ``netns``, which every mode has."""
    public = t.table.get("public", False)
    if not isinstance(public, bool):
        raise NetConfigError(f"{t.where('public')}: needs true or false", hint=HINT)
    ports = t.table.get("allowed_ports", [])
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
    ):
        raise NetConfigError(f"{t.where('allowed_ports')}: needs a list of ports 1-65535",
                             hint=HINT)  # fmt: skip
    return public, tuple(sorted(set(ports))), text(t, "netns", _NETNS)


def secret_path(t: Tunnel, key: str, base_dir: Path, table: Mapping[str, Any] | None = None
                ) -> Path | None:  # fmt: skip
    """A ``*_file`` key: the path of a file holding a secret (relative to ``base_dir``)."""
    value = (t.table if table is None else table).get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise NetConfigError(f"{t.where(key)}: needs the path of a file", hint=HINT)
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def read_secret(path: Path, what: str) -> bytes:
    """A secret file's bytes: a regular file, not a symlink, at most 64 KiB, and not
    readable by group or others. The error names the file, never its content."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise NetConfigError(
            f"{what}: {path}: cannot read ({exc.strerror or exc})",
            hint="the file must exist, be yours and not be a symlink",
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NetConfigError(f"{what}: {path}: not a regular file")
        if info.st_mode & 0o077:
            raise NetConfigError(
                f"{what}: {path}: readable by others (mode {stat.S_IMODE(info.st_mode):o})",
                hint=f"chmod 600 {path}",
            )
        raw = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_SECRET_BYTES:
        raise NetConfigError(f"{what}: {path}: larger than {MAX_SECRET_BYTES} bytes")
    return raw


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def config_digest(effective: Mapping[str, Any]) -> str:
    """SHA-256 of the effective configuration as canonical JSON (secrets already digests)."""
    return digest(json.dumps(effective, sort_keys=True, separators=(",", ":")).encode())


def runtime_dir(base_dir: Path, mode: str) -> Path:
    """``<base_dir>/run/net/<mode>``, made 0700, where generated files live."""
    path = base_dir / "run" / "net" / mode
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` as 0600, atomically (a temporary file, renamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.write(fd, content.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written (it holds a key) stays behind
        raise


def names(settings: NetSettings, wanted: Sequence[str] = ()) -> list[str]:
    """``wanted`` checked against the configured tunnels (empty: all of them)."""
    for name in wanted:
        if name not in settings.tunnels:
            have = ", ".join(sorted(settings.tunnels)) or "none"
            raise NetConfigError(f"no tunnel named {name[:64]!r} in {settings.source} "
                                 f"(configured: {have})", hint=HINT)  # fmt: skip
    return list(wanted) or sorted(settings.tunnels)
