"""A client for OpenVPN's management interface over its UNIX socket.

Why it reads the way it does: OpenVPN writes every management line with ``\\r\\n``
(``LOG_PRINT_CRLF`` in ``manage.c``), so a multi-line reply such as ``status 3`` ends
``END\\r\\n``. Upstream waited for ``\\nEND\\n``, which never arrives, on a socket without
a timeout: it hung forever against a real server. Here a reply is split into lines on
``\\r\\n``, every read has a deadline, and a reply is capped in size. Lines starting with
``>`` are real-time notifications (the ``>INFO`` banner, ``>BYTECOUNT_CLI``, ``>LOG``,
``>CLIENT``...) that may arrive between any two lines of a reply; they are set aside in
:attr:`ManagementClient.notifications`, never mistaken for the reply.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from kei.adapters.net.vpn_table import connect_unix
from kei.errors import NetError

log = logging.getLogger(__name__)

TIMEOUT: Final = 5.0
MAX_REPLY: Final = 1 << 20
MAX_NOTIFICATIONS: Final = 1000
PASSWORD_PROMPT: Final = b"ENTER PASSWORD:"


def quote(argument: str) -> str:
    """One management-command argument, quoted as OpenVPN's ``parse_line`` reads it."""
    if any(ord(c) < 32 or ord(c) == 127 for c in argument):
        raise NetError(f"a management command argument holds a control character: {argument!r}")
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _refused(command: str, line: str) -> NetError:
    word = command.partition(" ")[0]
    return NetError(f"OpenVPN refused {word!r}: {line.removeprefix('ERROR:').strip()[:200]}")


class ManagementClient:
    """One connection to a management socket; use as a context manager.

    ``timeout`` bounds every wait for a reply (seconds); ``max_reply`` bounds the bytes
    one reply may take. Both turn into :class:`NetError`, so a wedged or hostile server
    costs a caller at most that long and that much memory.
    """

    def __init__(self, path: Path, *, timeout: float = TIMEOUT, max_reply: int = MAX_REPLY) -> None:
        self.path, self.timeout, self.max_reply = path, timeout, max_reply
        self.notifications: list[str] = []
        self.banner: str | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and read the ``>INFO`` banner OpenVPN sends first."""
        self._sock = connect_unix(self.path, self.timeout, "OpenVPN's management socket")
        deadline = time.monotonic() + self.timeout
        try:
            while self.banner is None:
                self._read_line(deadline, budget=[self.max_reply])
                self.banner = next((n for n in self.notifications if n.startswith(">INFO:")), None)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, command: str) -> None:
        if self._sock is None:
            raise NetError("the management connection is closed")
        if "\n" in command or "\r" in command:
            raise NetError("a management command is one line")
        try:
            self._sock.sendall(command.encode() + b"\n")
        except OSError as exc:
            raise NetError(f"OpenVPN's management socket {self.path}: {exc}") from None

    def _read_line(self, deadline: float, budget: list[int]) -> str | None:
        """The next reply line (notifications set aside, returning None), CRLF removed."""
        assert self._sock is not None
        while b"\r\n" not in self._buffer:
            if self._buffer.startswith(PASSWORD_PROMPT):
                raise NetError(
                    f"OpenVPN's management socket {self.path} asks for a password",
                    hint="drop the management password: kei relies on the socket's permissions",
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise NetError(
                    f"OpenVPN's management socket {self.path} did not finish a reply "
                    f"within {self.timeout:g} s"
                )
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise NetError(f"OpenVPN's management socket {self.path}: {exc}") from None
            if not chunk:
                raise NetError(f"OpenVPN closed its management socket {self.path} mid-reply")
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise NetError(
                    f"OpenVPN's management reply is larger than {self.max_reply} bytes; refused"
                )
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\r\n", 1)
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(">"):
            if len(self.notifications) >= MAX_NOTIFICATIONS:
                del self.notifications[0]
            self.notifications.append(line)
            return None
        return line

    def lines(self, command: str) -> list[str]:
        """Send a command whose reply is lines ended by ``END`` (``status``, ``version``)."""
        self._send(command)
        deadline, budget = time.monotonic() + self.timeout, [self.max_reply]
        reply: list[str] = []
        while True:
            line = self._read_line(deadline, budget)
            if line is None:
                continue
            if line == "END":
                return reply
            if not reply and line.startswith("ERROR:"):
                raise _refused(command, line)
            reply.append(line)

    def command(self, command: str) -> str:
        """Send a command answered by one ``SUCCESS:`` line; its text. ``ERROR:`` raises."""
        self._send(command)
        deadline, budget = time.monotonic() + self.timeout, [self.max_reply]
        while True:
            line = self._read_line(deadline, budget)
            if line is None:
                continue
            if line.startswith("SUCCESS:"):
                return line[8:].strip()
            if line.startswith("ERROR:"):
                raise _refused(command, line)
            log.debug("management line outside a reply ignored: %.80r", line)

    def wait_notification(self, prefix: str, timeout: float) -> str:
        """The first notification starting with ``prefix`` (already received or next)."""
        deadline = time.monotonic() + timeout
        budget = [self.max_reply]
        while True:
            for index, note in enumerate(self.notifications):
                if note.startswith(prefix):
                    return self.notifications.pop(index)
            if time.monotonic() >= deadline:
                raise NetError(f"no {prefix} notification within {timeout:g} s")
            try:
                self._read_line(deadline, budget)
            except NetError:
                if time.monotonic() < deadline:
                    raise

    def status(self) -> list[str]:
        """``status 3``: TAB-separated rows (see :mod:`kei.adapters.net.openvpn_status`)."""
        return self.lines("status 3")

    def version(self) -> str | None:
        """OpenVPN's version line (``OpenVPN 2.6.14 x86_64...``), if it says one."""
        for line in self.lines("version"):
            if line.startswith("OpenVPN Version:"):
                return line.split(":", 1)[1].strip()[:200]
        return None

    def bytecount(self, interval: int) -> str:
        """Ask for ``>BYTECOUNT(_CLI)`` notifications every ``interval`` s (0 stops them)."""
        return self.command(f"bytecount {int(interval)}")

    def kill(self, target: str) -> str:
        """Disconnect the clients with common name ``target``, or the one at ``ip:port``."""
        return self.command(f"kill {quote(target)}")

    def signal(self, name: str) -> str:
        if name not in ("SIGHUP", "SIGTERM", "SIGUSR1", "SIGUSR2"):
            raise NetError(f"not a signal OpenVPN takes: {name!r}")
        return self.command(f"signal {name}")

    def pid(self) -> int:
        text = self.command("pid")
        try:
            return int(text.removeprefix("pid="))
        except ValueError:
            raise NetError(f"OpenVPN answered 'pid' with {text[:60]!r}") from None
