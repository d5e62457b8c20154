"""How one server runs and records tool calls.

Every call runs on one worker thread (``Calls``): kei's ledger and read models are used
from one thread at a time, as the CLI uses them, while the event loop stays free to
answer ``ping`` and further requests. A read answers with the log position it was
computed at. A write runs inside ``ledger.riding(record)``: the service appends its
events and, in the same batch, one ``mcp.tool.called`` (``CallRecord``), signed by the
server's key; a write that appends nothing (refused, a no-op) is recorded alone, with
the one-line error the client was given. Any failure becomes a ``ToolError``, which the
SDK answers as an ``isError`` result (never a protocol error).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, Final, Protocol, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from msgspec import Struct, field

from kei.app.json_form import json_object
from kei.app.ledger.appending import NewEvent
from kei.app.ledger.group_commit import signing_as
from kei.app.ledger.ledger import Ledger
from kei.domain.events import ToolCalled
from kei.domain.events.mcp import mcp_stream
from kei.domain.log.keys import SigningKey
from kei.domain.log.recorded import RecordedEvent
from kei.errors import KeiError, LeakBlockedError
from kei.limits import LIMITS

log = logging.getLogger(__name__)
Answer = dict[str, Any]
T = TypeVar("T")
WITHHELD: Final = "error text withheld: it matched a leak-matrix block rule"


class Sent(Struct):
    """One ``tools/call`` as received (``watch.py``); ``ran`` once a kei tool took it over."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    ran: bool = False


SENT: ContextVar[Sent | None] = ContextVar("kei_mcp_sent", default=None)


class Caller(Struct, frozen=True):
    """The client as it introduced itself (``clientInfo``), cut to the identifier limit."""

    name: str = ""
    version: str = ""
    protocol_version: str = ""


class _Request(Protocol):
    """What both the SDK's tool ``Context`` and its middleware context offer."""

    @property
    def session(self) -> Any: ...

    @property
    def protocol_version(self) -> str | None: ...


def caller_of(ctx: _Request) -> Caller:
    """Who is calling: the initialize request's ``clientInfo`` and the negotiated version."""
    params = ctx.session.client_params
    info = getattr(params, "client_info", None)
    return Caller(
        _cut(getattr(info, "name", "")),
        _cut(getattr(info, "version", "")),
        _cut(ctx.protocol_version or ""),
    )


def _cut(text: object) -> str:
    value = text if isinstance(text, str) else ""
    clean = "".join(c for c in value if c.isprintable())
    return clean[: LIMITS.max_id_chars]


def args_digest(args: Mapping[str, Any]) -> str:
    """SHA-256 of the arguments' canonical JSON (as sent: ``watch.py``): sorted keys, no
    spaces, UTF-8, the arguments sent as null dropped."""
    given = {k: v for k, v in args.items() if v is not None}
    canonical = json.dumps(given, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def one_line(exc: BaseException) -> str:
    """An error as the client sees it: kei's message and hint on one line."""
    if isinstance(exc, KeiError):
        text = str(exc) + (f" (hint: {exc.hint})" if exc.hint else "")
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return squash(text)


def squash(text: str) -> str:
    """``text`` on one line, within the text limit."""
    return " ".join(text.split())[: LIMITS.max_text_chars]


class CallRecord:
    """The ``mcp.tool.called`` of one write call: a ledger rider (``app/ledger/riding.py``)."""

    def __init__(self, session: str, caller: Caller, tool: str, args: Mapping[str, Any]) -> None:
        self.session, self.caller, self.tool = session, caller, tool
        self.digest = args_digest(args)
        self.started = time.perf_counter_ns()
        self.position: int | None = None

    def payload(self, *, appended: int = 0, error: str | None = None) -> ToolCalled:
        c = self.caller
        return ToolCalled(
            session=self.session, client_name=c.name, client_version=c.version,
            protocol_version=c.protocol_version, tool=self.tool, args_sha256=self.digest,
            is_error=error is not None, error=error or "", appended=appended,
            duration_us=(time.perf_counter_ns() - self.started) // 1000,
        )  # fmt: skip

    def events(self, batch: Sequence[NewEvent]) -> Sequence[NewEvent]:
        if self.position is not None:
            return ()
        return [NewEvent(mcp_stream(self.session), self.payload(appended=len(batch)))]

    def landed(self, recorded: Sequence[RecordedEvent]) -> None:
        self.position = recorded[0].position


class Calls:
    """The calls of one server over one ledger: run in turn, writes recorded."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        read_only: bool = False,
        signer: Callable[[Context], SigningKey | None] | None = None,
    ) -> None:
        self.ledger, self.read_only = ledger, read_only
        self.signer = signer  # which key signs a call's batch (None: the ledger's own)
        self.session = secrets.token_hex(8)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kei-mcp")

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the worker thread (for resources and prompts: their errors are
        the SDK's to report, as the protocol says)."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    async def read(self, work: Callable[[], tuple[int, Answer]]) -> Answer:
        """A read: ``work`` returns the position it read at and its answer."""

        def run() -> Answer:
            position, answer = work()
            return json_object({"position": position, **answer})

        return await self._run(run)

    async def write(
        self, ctx: Context, tool: str, args: Mapping[str, Any], work: Callable[[], Answer]
    ) -> Answer:
        """A change: ``work`` calls one service; its batch carries the call's record."""
        sent = SENT.get()
        if sent is not None and sent.tool == tool:
            sent.ran, args = True, sent.arguments  # the digest covers what the client sent
        if self.read_only:
            raise ToolError(
                f"{tool} changes the log and this server is read-only "
                "(started with --read-only); use a server started without it"
            )
        record = CallRecord(self.session, caller_of(ctx), tool, args)
        key = None if self.signer is None else self.signer(ctx)
        return await self._run(lambda: self._write(record, work, key))

    async def refused(self, ctx: _Request, tool: str, args: Mapping[str, Any], error: str) -> None:
        """Record a changing call the SDK refused before kei's tool saw it."""
        record = CallRecord(self.session, caller_of(ctx), tool, args)
        await self.run(lambda: self._record_alone(record, squash(error)))

    def _write(
        self, record: CallRecord, work: Callable[[], Answer], key: SigningKey | None = None
    ) -> Answer:
        try:
            with self.ledger.riding(record), signing_as(key):
                answer = work()
        except Exception as exc:
            message = one_line(exc)
            if record.position is None:
                self._record_alone(record, message)
            raise ToolError(message) from None
        if record.position is None:  # the service appended nothing: a no-op, recorded alone
            self._record_alone(record, None)
        return json_object({**answer, "call_position": record.position})

    def _record_alone(self, record: CallRecord, error: str | None) -> None:
        """Record a call that appended nothing; a record that cannot be written is logged,
        never a second error for the client."""
        for text in (error, WITHHELD) if error is not None else (None,):
            event = NewEvent(mcp_stream(self.session), record.payload(error=text))
            try:
                record.landed(self.ledger.append([event]))
                return
            except LeakBlockedError:
                continue
            except KeiError as exc:
                log.warning("tool call %s not recorded: %s", record.tool, one_line(exc))
                return
        log.warning("tool call %s not recorded: its record matched a leak block rule", record.tool)

    async def _run(self, work: Callable[[], Answer]) -> Answer:
        try:
            return await self.run(work)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(one_line(exc)) from None
