"""A budget's periods: UTC calendar days and months, or all time; keys and windows.

Pure integer arithmetic on microseconds since the epoch (the days-from-civil
algorithm, so the last month of year 9999 ends without a ``datetime`` of year
10000). A period is named by its key: ``2026-03-01`` (a day), ``2026-03`` (a month),
``total``; its window is ``start_us <= call_us < end_us``, None for an open end.

The forecast is a straight line: what was spent from the period's start up to the
moment of the status, scaled to the whole period. A ``total`` budget has no end, so
no forecast.
"""

from __future__ import annotations

from typing import Final

from msgspec import Struct

from kei.domain.events.budgets import PERIODS
from kei.domain.events.fields import TIME_MAX
from kei.errors import InputError

DAY_US: Final = 86_400_000_000
TOTAL: Final = "total"


class Window(Struct, frozen=True):
    """One period: its key and ``start_us <= t < end_us`` (None: open)."""

    key: str
    start_us: int | None = None
    end_us: int | None = None

    @property
    def length_us(self) -> int | None:
        if self.start_us is None or self.end_us is None:
            return None
        return self.end_us - self.start_us


def period_window(period: str, at_us: int) -> Window:
    """The period of kind ``period`` that holds the moment ``at_us``."""
    if period not in PERIODS:
        raise InputError(f"unknown budget period {period!r}; use day, month or total")
    if not 0 <= at_us <= TIME_MAX:
        raise InputError(f"the moment {at_us} µs is outside 1970-01-01 .. 9999-12-31")
    if period == TOTAL:
        return Window(TOTAL)
    day = at_us // DAY_US
    year, month, mday = civil_from_days(day)
    if period == "day":
        return Window(f"{year:04d}-{month:02d}-{mday:02d}", day * DAY_US, (day + 1) * DAY_US)
    start = days_from_civil(year, month, 1)
    end = days_from_civil(year + month // 12, month % 12 + 1, 1)
    return Window(f"{year:04d}-{month:02d}", start * DAY_US, end * DAY_US)


def forecast(window: Window, spent_so_far: int, spent: int, at_us: int) -> int | None:
    """What the period will have cost at its end at the pace of ``spent_so_far`` (the
    spend from its start up to ``at_us``), never less than ``spent`` (all of it so
    far); None for a period without an end, or at its very first microsecond."""
    length = window.length_us
    if length is None or window.start_us is None:
        return None
    elapsed = at_us - window.start_us
    if elapsed <= 0:
        return None
    return max(spent, spent_so_far * length // elapsed)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The (year, month, day) of ``days`` since 1970-01-01."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day
