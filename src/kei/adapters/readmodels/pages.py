"""Applying one page of verified events to projections, exactly once.

The page's state rows are claimed first, in the page's transaction: a conditional
update (``state.CLAIM``) from the position this engine read to the page's last event.
An engine that finds a row already moved lost the race to another engine; it rolls the
page back and reads again where everyone stands. Each event is opened once, whatever
the number of projections that want it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.engine import Engine

from kei.adapters.readmodels.state import CLAIM, Cursor, driver_sql
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord
from kei.projections.base import Projection, apply_page, wants

log = logging.getLogger(__name__)


def commit_page(
    engine: Engine,
    projections: Mapping[str, Projection],
    cursor: Cursor,
    names: list[str],
    records: list[StoredRecord],
) -> Cursor | None:
    """Claim the page for ``names`` (all at ``cursor``), apply it, commit; where they
    stand now, or None if another engine moved them first."""
    last = records[-1]
    moved = Cursor(last.position, last.seq, last.hash)
    pages = route(projections, names, records)
    try:
        with engine.begin() as conn:
            for n in names:
                version = projections[n].version
                params = (moved.position, moved.seq, moved.hash, n, cursor.position, version)
                claimed = conn.exec_driver_sql(driver_sql(conn, CLAIM), params)
                if claimed.rowcount != 1:
                    raise _LostRaceError
            for n, page in pages.items():
                if page:
                    apply_page(conn, projections[n], page)
    except _LostRaceError:
        log.info("another engine applied page after %s first", cursor.position)
        return None
    return moved


def route(
    projections: Mapping[str, Projection], names: list[str], records: list[StoredRecord]
) -> dict[str, list[RecordedEvent]]:
    """Each projection's events of the page, each event opened once, in log order."""
    pages: dict[str, list[RecordedEvent]] = {n: [] for n in names}
    routes = {
        t: [pages[n] for n in names if wants(projections[n], t)] for t in {r.type for r in records}
    }
    for r in records:
        targets = routes[r.type]
        if targets:
            event = RecordedEvent.from_record(r)
            for page in targets:
                page.append(event)
    return pages


class _LostRaceError(Exception):
    """Another engine advanced the projection first; roll the page back."""
