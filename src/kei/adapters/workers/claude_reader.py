"""Reading Claude Code transcripts in a helper process, for ``kei import claude-code``.

Parsing a transcript line costs Python time the import's own process needs for
pricing, leak-scanning, signing and inserting; the machine's other core can parse
instead. The helper (a ``spawn`` process from ``processes.context()``: it never
outlives kei, never runs the caller's script) is handed the sessions' file lists (and, on a first import, the price catalog),
reads (and prices) them in order with the reader the import hands it
(``claude_reading.read_session``: passed in, so this adapter does not import the app
layer) and sends each session back as msgpack bytes. It only reads files; every write
stays in the import's process.

A pipe's send blocks while the other end has not read, so the helper is at most
about one session ahead and memory stays flat. If the helper fails to start or dies,
the import logs it once and reads the rest itself (``claude_reading._sessions``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from kei.adapters.workers import processes as workers
from kei.domain.catalog.catalog import Catalog

log = logging.getLogger(__name__)
Groups = list[tuple[str, list[str]]]  # (session id, its files in reading order)
_END: Final = b""  # after the last session (a session is never empty bytes)
_JOIN_S: Final = 2.0
# A session's reader: (session id, its files, the catalog or None) -> a msgspec value.
ReadSession = Callable[[str, list[Path], Catalog | None], Any]


def _serve(groups: Groups, catalog: Catalog | None, read_session: ReadSession,
           conn: Connection) -> None:  # fmt: skip
    """The helper's whole life: read each session, send it, then the end mark."""
    import msgspec

    encode = msgspec.msgpack.Encoder().encode
    try:
        for session, files in groups:
            conn.send_bytes(encode(read_session(session, [Path(f) for f in files], catalog)))
        conn.send_bytes(_END)
    except (BrokenPipeError, ConnectionResetError):  # the import stopped early
        return
    finally:
        conn.close()


class ReaderProcess:
    """The helper that reads ``groups``; :meth:`received` yields each session's bytes
    and ends early (nothing raised) when the helper could not start or died."""

    def __init__(self, groups: Groups, read_session: ReadSession,
                 catalog: Catalog | None = None) -> None:  # fmt: skip
        self._groups, self._catalog, self._read = groups, catalog, read_session
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None

    def __enter__(self) -> ReaderProcess:
        started = workers.start_sender(
            _serve, (self._groups, self._catalog, self._read), "kei-claude-reader"
        )
        if isinstance(started, OSError):
            log.warning("reading transcripts in this process (the helper: %s)", started)
        else:
            self._conn, self._process = started
        return self

    def received(self) -> Iterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError) as exc:
                log.warning("the transcript reader stopped (%r); reading the rest here", exc)
                return
            if data == _END:
                return
            yield data

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()  # a helper still sending gets a broken pipe and ends
        if process is not None:
            process.join(timeout=_JOIN_S)
            if process.is_alive():
                process.kill()
                process.join()
