"""The tracker table's rows, as upstream kei-migrate keeps them, and kei's one addition.

``_kei_migrations(version, name, checksum, applied_at)`` is upstream's table, kept
column for column so a database upstream managed goes on unchanged (and upstream can
still read what kei wrote): ``checksum`` is the SHA-256 of the up file,
``applied_at`` RFC 3339 UTC (upstream writes chrono's ``to_rfc3339``,
``2026-05-01T10:00:00.123456789+00:00``; kei writes microseconds).

``_kei_migrations_started`` exists only on MySQL/MariaDB, whose DDL commits as it
goes: a row is written and committed before a migration's first statement and
removed in the same transaction as the tracker row is written (or deleted, for
``down``). A row left there is a run that did not finish: partial, until resolved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from msgspec import Struct

from kei.domain.events.migrate import Direction

TRACKER_TABLE: Final = "_kei_migrations"
STARTED_TABLE: Final = "_kei_migrations_started"
KEI_TABLES: Final = (TRACKER_TABLE, STARTED_TABLE)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class TrackerRow(Struct, frozen=True):
    """One ``_kei_migrations`` row, values as read (text may be anything)."""

    version: int
    name: str
    checksum: str
    applied_at: str


class StartedRow(Struct, frozen=True):
    """One ``_kei_migrations_started`` row: a MySQL run begun and not finished."""

    version: int
    name: str
    direction: Direction
    checksum: str
    started_at: str


def rfc3339(moment: datetime) -> str:
    """``applied_at`` as kei writes it: RFC 3339, UTC, microseconds, ``+00:00``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_rfc3339_us(text: str) -> int | None:
    """Microseconds since the epoch of an ``applied_at`` (upstream's nanoseconds are
    cut to microseconds); None for text that is not such a time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    us = (moment - _EPOCH) // timedelta(microseconds=1)
    return us if us >= 0 else None
