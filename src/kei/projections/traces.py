"""``traces``: every distinct trace event, and every refused one, per session.

What ``kei retro`` analyses (``kei.domain.retro.sessions``) and what ``kei retro ingest`` reads
to skip the hashes already in the log. Rows are keyed by ``(session, content_hash)``
and a second event with the same key changes nothing (``ON CONFLICT DO NOTHING``), so
two racing ingests of one file still count each event once.

Tables (``<name>`` is ``traces``):

- ``<name>_events``: ``session``, ``content_hash`` (primary key), ``line_no``,
  ``block``, ``ts_us`` (the trace's own time, or NULL), ``kind``, ``event_class``,
  ``tool``, ``file_path``, ``is_error``, ``text``, ``cwd``;
- ``<name>_rejected``: ``session``, ``content_hash`` (primary key), ``line_no``,
  ``source``, ``rule``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Boolean, Column, MetaData, String, Table

from kei.domain.events.traces import TraceRecorded, TraceRejected
from kei.domain.log.recorded import RecordedEvent
from kei.projections.base import dialect_insert
from kei.projections.defined import DefinedTable
from kei.projections.faults import faults_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = "traces"


class Traces:
    """The trace read model; see the module docstring."""

    version = 1
    event_types = frozenset({"trace.recorded", "trace.rejected"})
    events = DefinedTable()
    rejected = DefinedTable()

    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def define(self, metadata: MetaData) -> list[Table]:
        self.events = Table(
            f"{self.name}_events", metadata,
            Column("session", String, primary_key=True),
            Column("content_hash", String, primary_key=True),
            Column("line_no", BigInteger, nullable=False),
            Column("block", BigInteger, nullable=False),
            Column("ts_us", BigInteger), Column("kind", String, nullable=False),
            Column("event_class", String, nullable=False),
            Column("tool", String), Column("file_path", String),
            Column("is_error", Boolean, nullable=False),
            Column("text", String, nullable=False), Column("cwd", String),
        )  # fmt: skip
        self.rejected = Table(
            f"{self.name}_rejected", metadata,
            Column("session", String, primary_key=True),
            Column("content_hash", String, primary_key=True),
            Column("line_no", BigInteger, nullable=False),
            Column("source", String, nullable=False), Column("rule", String, nullable=False),
        )  # fmt: skip
        self.faults = faults_table(metadata, self.name)
        return [self.events, self.rejected, self.faults]

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        self.apply_page(conn, [event])

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        kept: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for e in events:
            p = e.payload()
            if isinstance(p, TraceRecorded):
                kept.append({"session": p.session, "content_hash": p.content_hash,
                             "line_no": p.line_no, "block": p.block, "ts_us": p.ts_us,
                             "kind": p.kind, "event_class": p.event_class, "tool": p.tool,
                             "file_path": p.file_path, "is_error": p.is_error,
                             "text": p.text, "cwd": p.cwd})  # fmt: skip
            elif isinstance(p, TraceRejected):
                refused.append({"session": p.session, "content_hash": p.content_hash,
                                "line_no": p.line_no, "source": p.source, "rule": p.rule})  # fmt: skip
            else:  # the registry maps the types
                raise TypeError(f"{e.type} at position {e.position} is not a trace event")
        for table, rows in ((self.events, kept), (self.rejected, refused)):
            if rows:
                stmt = dialect_insert(conn, table).on_conflict_do_nothing()  # type: ignore[attr-defined]
                conn.execute(stmt, rows)
