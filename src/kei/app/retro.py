"""``kei retro``: ingest session transcripts as trace events, and read retrospectives.

``ingest`` streams the file line by line (memory stays flat whatever its size):
``kei.domain.retro.trace.parse_line`` reads each line; an event whose content hash the log
already holds for the session is skipped, so ingesting a file twice appends nothing;
the injection guard (``trace.screen``) and then the leak matrix refuse what they must,
and a refused event is appended as ``trace.rejected`` (hash, line, rule; never its
text). The rest go in batches as ``trace.recorded``, through ``Ledger.append``, whose
leak guard redacts what a substitute rule matches. Reads catch the ``traces``
projection up and hand its rows to the pure analyses of ``kei.domain.retro.sessions``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from msgspec import Struct, field

from kei.adapters.files.bounded_read import bounded_lines, open_regular
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.events.limits import payload_problem
from kei.domain.events.payload import Payload
from kei.domain.events.traces import TraceRejected, recorded, trace_stream
from kei.domain.leaks.free_text import identifier_strings
from kei.domain.leaks.matrix import Matrix
from kei.domain.memory.guard import Blocked
from kei.domain.retro.trace import Skipped, TraceEvent, parse_line, screen
from kei.projections.traces import Traces

BATCH: Final = 500


class IngestReport(Struct):
    session: str
    lines: int = 0
    appended: int = 0
    known: int = 0
    rejected: int = 0
    skipped: list[Skipped] = field(default_factory=list)


class RetroService(ReadModelService):
    """Trace ingestion and retrospectives over one ledger and its ``traces`` read model."""

    def __init__(self, ledger: Ledger, matrix: Matrix, *, seal_key: bytes | None = None) -> None:
        self.matrix = matrix
        self.projection = Traces()
        super().__init__(ReadModels(ledger, self.projection, name="traces", seal_key=seal_key))

    # -- ingesting -------------------------------------------------------------------

    def ingest(self, path: Path, session: str) -> IngestReport:
        """Append the events of ``path`` the log does not hold yet for ``session``.

        Batches are appended at the session stream's version read with the known
        hashes, so two ingests of one session racing cannot both append an event:
        the loser reads the hashes again and goes on (``app/ledger/retrying.py``).
        """
        mine: dict[str, bool] = {}  # hash -> rejected, of events an earlier try appended
        return retry_write(
            self.ledger.retry,
            lambda: self._ingest(path, session, mine),
            what=f"trace session {session}",
            left="batches appended before the last race stay (ingesting again skips them)",
        )

    def _ingest(self, path: Path, session: str, mine: dict[str, bool]) -> IngestReport:
        report = IngestReport(session)
        stream = trace_stream(session)
        version = self.ledger.store.stream_version(stream)
        known, seen = self._hashes(session), set[str]()
        pending: list[tuple[str, Payload]] = []
        for line_no, raw in enumerate(_lines(path), 1):
            report.lines = line_no
            parsed = parse_line(raw, line_no, session)
            if isinstance(parsed, Skipped):
                report.skipped.append(parsed)
                continue
            for event in parsed:
                digest = event.content_hash
                if digest in mine and digest not in seen:
                    report.appended += 1
                    report.rejected += mine[digest]
                elif digest in known or digest in seen:
                    report.known += 1
                else:
                    payload = self._payload(event)
                    problem = payload_problem(payload)  # kei's field limits: skip the line
                    if problem is None:
                        pending.append((digest, payload))
                    else:
                        report.skipped.append(Skipped(line_no, problem))
                seen.add(digest)
            if len(pending) >= BATCH:
                version = self._flush(stream, version, pending, mine, report)
                pending = []
        if pending:
            self._flush(stream, version, pending, mine, report)
        return report

    def _flush(
        self,
        stream: str,
        version: int,
        pending: list[tuple[str, Payload]],
        mine: dict[str, bool],
        report: IngestReport,
    ) -> int:
        """Append one batch at ``version`` (ConcurrencyError when another ingest
        moved the stream); returns the stream's version after it."""
        batch = [
            NewEvent(stream, p, version if i == 0 else None) for i, (_, p) in enumerate(pending)
        ]
        report.appended += len(self.ledger.append(batch))
        for digest, payload in pending:
            rejected = isinstance(payload, TraceRejected)
            mine[digest] = rejected
            report.rejected += rejected
        return version + len(batch)

    def _payload(self, event: TraceEvent) -> Payload:
        """The event, or its refusal by the injection guard or the leak matrix."""
        guarded = screen(event)
        if isinstance(guarded, Blocked):
            return _refused(event, "injection-guard", guarded.finding.pattern)
        leak = self.matrix.check_fields({"text": event.text})
        if leak.blocked is not None:
            return _refused(event, "leak-matrix", leak.blocked.rule_id)
        payload = recorded(event)  # the ledger's leak guard redacts what must be
        # A secret in a path or tool name refuses this event, not the whole ingest.
        ids = self.matrix.check_identifiers(identifier_strings(payload, ("text", "session")))
        if ids.blocked is not None:
            return _refused(event, "leak-matrix", ids.blocked.rule_id)
        return payload

    def _hashes(self, session: str) -> set[str]:
        found: set[str] = set()
        with self.models.catch_up().connect() as conn:
            for table in (self.projection.events, self.projection.rejected):
                query = sa.select(table.c.content_hash).where(table.c.session == session)
                found.update(r[0] for r in conn.execute(query))
        return found

    # -- reading ---------------------------------------------------------------------

    def events(self, session: str | None = None) -> list[TraceEvent]:
        """The recorded events (of one session, or all), for the analyses."""
        t = self.projection.events
        query = sa.select(t) if session is None else sa.select(t).where(t.c.session == session)
        with self.models.catch_up().connect() as conn:
            rows = conn.execute(query.order_by(t.c.session, t.c.content_hash)).mappings().all()
        return [_event(r) for r in rows]

    def sessions(self) -> list[str]:
        t = self.projection.events
        with self.models.catch_up().connect() as conn:
            return [
                r[0] for r in conn.execute(sa.select(t.c.session).distinct().order_by(t.c.session))
            ]


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines, read as they are needed: a regular file only, each line bounded."""
    with open_regular(path, hint="give the path of a .jsonl transcript") as handle:
        yield from bounded_lines(handle, str(path))


def _refused(event: TraceEvent, source: str, rule: str) -> TraceRejected:
    return TraceRejected(session=event.session, content_hash=event.content_hash,
                         line_no=event.line_no, source=source, rule=rule)  # fmt: skip


def _event(r: sa.RowMapping) -> TraceEvent:
    return TraceEvent(
        session=r["session"], line_no=r["line_no"], block=r["block"], ts_us=r["ts_us"],
        kind=r["kind"], tool=r["tool"], file_path=r["file_path"], is_error=bool(r["is_error"]),
        event_class=r["event_class"], message=None, text=r["text"], cwd=r["cwd"],
        content_hash=r["content_hash"],
    )  # fmt: skip
