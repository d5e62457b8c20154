"""Trace events: a session transcript, line by line, as signed facts.

``kei retro ingest`` appends one ``trace.recorded`` per distinct event of a transcript
(``kei.domain.retro.trace``), on stream ``trace/<session>``, keyed by its content hash: a
hash the log already holds for the session is never appended again, so ingesting the
same file twice appends nothing. Times are the trace's own (``ts_us``, None when the
line had none), never the clock at ingest. Only the readable ``text`` is kept, not the
raw message JSON it was read from, and it has passed the injection guard and the leak
matrix. A line either refuses is a ``trace.rejected``: its hash, line and the rule,
never its text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from kei.domain.events.payload import Payload

if TYPE_CHECKING:  # the transcript parser (and its guard's regexes) only when used
    from kei.domain.retro.trace import TraceEvent

TRACE_STREAM_PREFIX: Final = "trace/"


class TraceRecorded(Payload, frozen=True, kw_only=True):
    """One event of a session's trace."""

    session: str
    content_hash: str
    line_no: int
    block: int
    ts_us: int | None
    kind: str
    event_class: str
    text: str
    tool: str | None = None
    file_path: str | None = None
    is_error: bool = False
    cwd: str | None = None
    redacted_by: tuple[str, ...] = ()
    flagged_by: tuple[str, ...] = ()


class TraceRejected(Payload, frozen=True, kw_only=True):
    """A trace event refused by the injection guard or the leak matrix."""

    session: str
    content_hash: str
    line_no: int
    source: str  # "injection-guard" or "leak-matrix"
    rule: str


def trace_stream(session: str) -> str:
    return TRACE_STREAM_PREFIX + session


def recorded(e: TraceEvent, text: str | None = None) -> TraceRecorded:
    """The event to append for ``e`` (``text`` once redacted, if it was)."""
    return TraceRecorded(
        session=e.session, content_hash=e.content_hash, line_no=e.line_no, block=e.block,
        ts_us=e.ts_us, kind=e.kind, event_class=e.event_class,
        text=e.text if text is None else text, tool=e.tool, file_path=e.file_path,
        is_error=e.is_error, cwd=e.cwd,
    )  # fmt: skip


def trace_event(p: TraceRecorded) -> TraceEvent:
    """Back to the value the analyses take (``message`` is not kept)."""
    from kei.domain.retro.trace import TraceEvent

    return TraceEvent(
        session=p.session, line_no=p.line_no, block=p.block, ts_us=p.ts_us, kind=p.kind,
        tool=p.tool, file_path=p.file_path, is_error=p.is_error, event_class=p.event_class,
        message=None, text=p.text, cwd=p.cwd, content_hash=p.content_hash,
    )  # fmt: skip
