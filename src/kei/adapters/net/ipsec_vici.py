"""A VICI session to strongSwan's charon with deadlines and a size cap.

Why wrap the ``vici`` package: its transport clears the socket timeout after the first
byte of a message and trusts the 32-bit length a message announces, so a wedged daemon
could hold a caller forever and a broken one make it allocate gigabytes. Here the socket
also carries a kernel receive timeout (``SO_RCVTIMEO``, which survives the package
switching the socket to blocking mode), a message longer than ``max_message`` is
refused, and every failure, whatever the package raised, is one :class:`NetError`.
The package is imported only here, when an IPsec tunnel is used (``pip install
'kei[net]'``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from kei.adapters.net.vpn_table import connect_unix
from kei.errors import NetError

TIMEOUT: Final = 10.0
MAX_MESSAGE: Final = 4 << 20

Message = Mapping[str, Any]


def text(value: object) -> str:
    """A VICI value (bytes) as text; anything else as its ``str``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def number(value: object) -> int | None:
    """A VICI counter (bytes of digits) as an int, or None when absent or not a count."""
    try:
        found = int(text(value))
    except ValueError:
        return None
    return found if found >= 0 else None


def sections(value: object) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The named sub-sections of a VICI section, skipping anything that is not one."""
    if isinstance(value, Mapping):
        for key, section in value.items():
            if isinstance(section, Mapping):
                yield str(key), section


class Vici:
    """One session to the VICI socket at ``path``; use as a context manager."""

    def __init__(
        self, path: Path, *, timeout: float = TIMEOUT, max_message: int = MAX_MESSAGE
    ) -> None:
        self.path, self.timeout, self.max_message = path, timeout, max_message
        self._session: Any = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> Self:
        try:
            import vici
            from vici.protocol import RECV_TIMEOUT_DEFAULT, Transport
        except ImportError:
            raise NetError(
                "IPsec tunnels need the vici package", hint="pip install 'kei[net]'"
            ) from None
        cap, where = self.max_message, self.path

        class CappedTransport(Transport):  # type: ignore[misc]
            def receive(self, timeout: object = RECV_TIMEOUT_DEFAULT) -> bytes:
                head: bytes = self._recvall(self.HEADER_LENGTH, timeout)
                (length,) = struct.unpack("!I", head)
                if length > cap:
                    raise NetError(f"charon at {where} sent a {length}-byte message; refused")
                body: bytes = self._recvall(length)
                return body

        sock = connect_unix(self.path, self.timeout, "strongSwan's VICI socket",
                            hint="is charon running, and is its vici plugin loaded?")  # fmt: skip
        self._sock = sock
        self._session = vici.Session(sock)
        self._session.transport = CappedTransport(sock)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, command: str, message: Message | None = None) -> Message:
        """A plain command; its reply. charon's refusal or a broken session raises."""
        try:
            reply: Message = self._session.request(command, _plain(message))
        except NetError:
            raise
        except Exception as exc:  # the package raises its own, socket and struct errors
            raise NetError(f"strongSwan VICI {command}: {_why(exc)}") from None
        return reply

    def stream(self, command: str, event: str, message: Message | None = None) -> list[Message]:
        """A streamed command (``list-sas``, ``initiate``): every event it sent."""
        found: list[Message] = []
        try:
            for item in self._session.streamed_request(command, event, _plain(message)):
                found.append(item)
                if len(found) > 100_000:
                    raise NetError(f"strongSwan VICI {command}: more than 100000 events")
        except NetError:
            raise
        except Exception as exc:  # as in request()
            raise NetError(
                f"strongSwan VICI {command}: {_why(exc)}", hint=_log_tail(found)
            ) from None
        return found


def _plain(message: Message | None) -> dict[str, Any] | None:
    return None if message is None else dict(message)


def _why(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__)[:300]


def _log_tail(events: list[Message]) -> str | None:
    """The last lines charon logged for a failed ``initiate``/``terminate`` (``control-log``)."""
    lines = [text(e.get("msg")) for e in events if isinstance(e, Mapping) and "msg" in e]
    return "\n".join(lines[-12:]) or None
