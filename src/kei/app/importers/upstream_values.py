"""Coerce the values of an upstream SQLite row, which may hold anything in any column.

SQLite keeps whatever a writer gave it, whatever the column's declared type, so an
upstream row can hold text where an integer belongs. Text stays text (bytes
decoded), integers stay integers. A time column (``started_ts``, ``finished_ts``,
``skill_invocations.ts``: unix seconds upstream) is read as a time when it is one of
the known forms, and otherwise is *named*, never read as 0 (which is 1970):

- an integer, or a text of digits: unix seconds;
- a real, or a decimal text (``1700000000.5``): unix seconds, the fraction dropped;
- an ISO 8601 / RFC 3339 text (``2026-01-02T03:04:05Z``, SQLite's own
  ``2026-01-02 03:04:05``, a date alone): UTC unless it carries an offset.

Anything else (NULL, ``'yesterday'``, a blob) is ``Unreadable`` with the raw value
shown, for the import report to name with its row.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from msgspec import Struct

from kei.app.importers.report import shown

NOT_A_TIME = "not a time kei reads (unix seconds or an ISO 8601 time)"


class Unreadable(Struct, frozen=True):
    """A time column kei could not read: which column, and the raw value, shown; ``why``
    is the same for every one (``NOT_A_TIME``)."""

    column: str
    raw: str
    why: str = NOT_A_TIME

    @property
    def what(self) -> str:
        return f"{self.column} {self.raw}"


def text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def integer(value: Any) -> int | None:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def seconds(column: str, value: Any) -> int | Unreadable:
    """Unix seconds from an upstream time column, or why it is not one."""
    found = integer(value)
    if found is not None:
        return found
    if isinstance(value, float) and math.isfinite(value):
        return math.floor(value)
    if isinstance(value, str):
        parsed = _text_seconds(value.strip())
        if parsed is not None:
            return parsed
    raw = shown(value) if isinstance(value, str) else "NULL" if value is None else repr(value)
    return Unreadable(column, raw[:80])


def _text_seconds(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return math.floor(number)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())
