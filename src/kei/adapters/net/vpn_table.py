"""One tunnel's settings table read and checked, and what else the OpenVPN and IPsec
modes share (a UNIX-socket connection with a deadline, the name/public properties).

Why a reader of its own: every value ends up in a generated configuration file or a VICI
message, so a newline, a quote or a stray type in a setting would become a directive the
user never wrote. Each getter refuses such values with one :class:`NetConfigError` line
naming the tunnel and the key; secrets are only ever named by their file path, and a
path's contents are never repeated in an error.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import stat
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from kei.errors import NetConfigError, NetError

NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# Words that go into a configuration file or a VICI message unquoted.
WORD: Final = re.compile(r"[A-Za-z0-9%][A-Za-z0-9_.:@=/+,-]{0,253}")
MAX_KEY_FILE: Final = 1 << 20
# Keys every mode's table may hold (net.toml's [tunnels.NAME]); the reconciler reads them.
COMMON_KEYS: Final = frozenset({"mode", "public", "allowed_ports", "netns"})
NETNS: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Table:
    """The raw settings of tunnel ``name`` (one ``[net.<name>]`` table)."""

    def __init__(self, name: str, raw: Mapping[str, object], base_dir: Path) -> None:
        if not NAME.fullmatch(name):
            raise NetConfigError(
                f"[tunnels.{name[:40]!r}]: a tunnel name is letters, digits, '_', '.', '-' "
                "(at most 63, starting with a letter or digit)",
                hint="rename the [tunnels.NAME] table in net.toml",
            )
        self.name, self.raw, self.base_dir = name, raw, base_dir

    def fail(self, key: str, problem: str) -> NetConfigError:
        return NetConfigError(
            f"[tunnels.{self.name}]: key {key}: {problem}", hint="see docs/net.md for net.toml"
        )

    def refuse_unknown(self, known: frozenset[str]) -> None:
        known = known | COMMON_KEYS
        for key in self.raw:
            if key not in known:
                allowed = ", ".join(sorted(known))
                raise self.fail(str(key)[:40], f"unknown key (this mode takes {allowed})")

    def text(self, key: str, default: str | None = None, *, pattern: re.Pattern[str] = WORD) -> str:
        value = self.raw.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {type(value).__name__}")
        if not pattern.fullmatch(value):
            raise self.fail(key, f"{value[:40]!r} holds characters this setting cannot have")
        return value

    def optional(self, key: str, *, pattern: re.Pattern[str] = WORD) -> str | None:
        return None if self.raw.get(key) is None else self.text(key, pattern=pattern)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}")
        return str(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"must be a whole number from {low} to {high}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def ports(self, key: str = "allowed_ports") -> tuple[int, ...]:
        """A list of ports 1-65535, kept sorted and once each (absent: none)."""
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in value
        ):
            raise self.fail(key, "must be a list of ports 1-65535")
        return tuple(sorted(set(value)))

    def words(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        for item in value:
            if not WORD.fullmatch(item):
                raise self.fail(key, f"{item[:40]!r} holds characters this setting cannot have")
        return tuple(value)

    def networks(self, key: str) -> tuple[str, ...]:
        """A list of CIDR networks, each normalised (``10.1.0.9/24`` is refused)."""
        found = []
        for item in self.words(key):
            try:
                found.append(str(ipaddress.ip_network(item)))
            except ValueError:
                raise self.fail(key, f"{item[:40]!r} is not a network like 10.1.0.0/24") from None
        if not found:
            raise self.fail(key, "missing (a list of networks like 10.1.0.0/24)")
        return tuple(found)

    def path(self, key: str, default: Path | None = None) -> Path:
        """A file path (relative to the settings' directory); one line, no quotes."""
        value = self.raw.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, "missing (a file path)")
            return default
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a file path")
        if any(ord(c) < 32 or c in "\"'\\\x7f" for c in value) or len(value) > 1024:
            raise self.fail(key, "a path here is one line without quotes or backslashes")
        return self.base_dir / value

    def optional_path(self, key: str) -> Path | None:
        return None if self.raw.get(key) is None else self.path(key)

    def file_digest(self, key: str, path: Path, *, secret: bool = False) -> str:
        """SHA-256 of a key or certificate file: what the log signs instead of its bytes."""
        return hashlib.sha256(self.read_file(key, path, secret=secret)).hexdigest()

    def read_file(self, key: str, path: Path, *, secret: bool = False) -> bytes:
        """A file's bytes (at most 1 MiB). A ``secret`` one must be a regular file, not a
        symlink, and readable by its owner only: a key others can read is no longer one."""
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if secret else 0)
        try:
            descriptor = os.open(path, flags)
        except OSError as exc:
            raise self.fail(key, f"cannot read {path}: {exc.strerror}") from None
        with os.fdopen(descriptor, "rb") as handle:
            mode = os.fstat(descriptor).st_mode
            if secret and not stat.S_ISREG(mode):
                raise self.fail(key, f"{path} is not a regular file")
            if secret and mode & 0o077:
                raise self.fail(key, f"{path} is readable by others (chmod 600 {path})")
            data = handle.read(MAX_KEY_FILE + 1)
        if len(data) > MAX_KEY_FILE:
            raise self.fail(key, f"{path} is larger than {MAX_KEY_FILE} bytes")
        return data

    def netns(self) -> str | None:
        """The network namespace the tunnel runs in (``ip netns exec``), if one is named."""
        return self.optional("netns", pattern=NETNS)


def unix_socket_path(table: Table, key: str, path: Path) -> Path:
    """A UNIX socket path must fit ``sun_path`` (107 bytes and a NUL)."""
    if len(str(path).encode()) > 107:
        raise table.fail(key, f"socket path {str(path)[:60]}... is longer than 107 bytes")
    return path


def connect_unix(path: Path, timeout: float, what: str, hint: str | None = None) -> socket.socket:
    """A stream connection to the UNIX socket ``path``; every receive on it times out
    after ``timeout`` s, even once a library has made it blocking (``SO_RCVTIMEO``)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    seconds = int(timeout)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVTIMEO,
        struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000)),
    )  # fmt: skip
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise NetError(
            f"cannot connect to {what} {path}: {exc.strerror or exc}", hint=hint
        ) from None
    return sock
