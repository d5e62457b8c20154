"""``kei import kei-migrate --target URL``: an upstream tracker table carried into kei's log.

Each ``_kei_migrations`` row becomes a ``migrate.applied`` event on the target's
stream, marked ``Origin(source="kei-migrate", occurred_at_us=<applied_at>,
ref="_kei_migrations/<version>")``, with the row's checksum as the up file's. What
upstream never knew stays unknown (no down checksum, no duration, no schema before);
the last event carries the live schema digest as ``schema_after_sha256``, the
baseline the next ``verify`` compares with. The table is only read.

Idempotent and incremental, like the other importers: a version the log already holds
as applied is not carried again. A row whose values kei would refuse (a control
character in its name) is reported, not carried; an ``applied_at`` that is not RFC 3339
is carried with its time unknown. All of it is appended in one batch at the stream's
version as read, in chunks of ``CHUNK``: a concurrent runner makes the import stop,
whole chunks appended, and a re-run carries over what is missing.
"""

from __future__ import annotations

from typing import Final

import msgspec

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.migrate.reports import ImportReport, Note
from kei.app.migrate.session import opened
from kei.domain.events import Origin
from kei.domain.events.limits import check_payload
from kei.domain.events.migrate import MigrationApplied
from kei.domain.migrate.tracker import TRACKER_TABLE, TrackerRow, parse_rfc3339_us
from kei.errors import ConcurrencyError, ContentionError, KeiError

SOURCE: Final = "kei-migrate"
CHUNK: Final = 1_000


def import_kei_migrate(ledger: Ledger, url: str, *, dry_run: bool = False) -> ImportReport:
    """Carry the target's tracker table into ``ledger``."""
    with opened(ledger, url, None, create=False) as s:
        assert s.recorder is not None
        with s.db.transaction() as tx:
            rows, schema = tx.rows(), tx.schema_digest()
        history = s.recorder.history()
        report = ImportReport(target=s.identity, stream=s.stream, dry_run=dry_run, rows=len(rows))
        applied = history.applied()
        planned: list[MigrationApplied] = []
        for row in rows:
            if row.version in applied:
                report.already += 1
                continue
            payload = _payload(s.identity, row, report)
            if payload is not None:
                planned.append(payload)
        if planned:
            last = planned[-1]
            planned[-1] = msgspec.structs.replace(last, schema_after_sha256=schema)
        report.imported = len(planned)
        if not rows:
            report.notes.append(f"the target's {TRACKER_TABLE} table holds no rows")
        if planned and not dry_run:
            _append(ledger, s.stream, planned, history.stream_version)
        return report


def _payload(target: str, row: TrackerRow, report: ImportReport) -> MigrationApplied | None:
    ref = f"{TRACKER_TABLE}/{row.version}"
    when = parse_rfc3339_us(row.applied_at)
    if when is None:
        report.notes.append(f"{ref}: applied_at {row.applied_at[:40]!r} is not RFC 3339; "
                            "carried with its time unknown")  # fmt: skip
    payload = MigrationApplied(
        target=target,
        version=row.version,
        name=row.name,
        up_sha256=row.checksum,
        origin=Origin(source=SOURCE, occurred_at_us=when, ref=ref),
    )
    try:
        check_payload(payload)
    except KeiError as exc:
        report.not_carried.append(Note(row.version, f"{ref}: {exc}"))
        return None
    return payload


def _append(ledger: Ledger, stream: str, planned: list[MigrationApplied], version: int) -> None:
    events = [NewEvent(stream, p, version + i) for i, p in enumerate(planned)]
    for start in range(0, len(events), CHUNK):
        try:
            ledger.append(events[start : start + CHUNK])
        except ConcurrencyError:
            raise ContentionError(
                f"another runner recorded a change to {stream} while the import ran; "
                f"{start} of {len(events)} rows were carried over",
                hint="run the import again: it carries over only what is missing",
            ) from None
