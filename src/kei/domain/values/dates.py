"""Calendar dates as the shipped TOML tables write them.

A table may hold a date as a TOML date (``2025-01-31``) or as a string
(``"2025-01-31"``); both mean the same day and are kept as the ISO string. A TOML
datetime is not a date. The caller raises its own error, so each table's messages
keep naming its own file and field.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["iso_date"]


def iso_date(value: object) -> str | None:
    """The ``YYYY-MM-DD`` a TOML value holds, or None if it holds no date."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None
