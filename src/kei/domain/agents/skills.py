"""Skill metrics: upstream kei-ledger's ``aggregate_skills`` maths, pure and exact.

Upstream (kei-ledger v8 ``skill_metrics``, spec §1.7) is followed where its code and
its docs disagree: the module doc promises ">20 uses and >90 %" for validated and
"<60 %" for re-extraction, but the aggregator that runs uses the thresholds below,
and its tests pin them. kei keeps the code's behaviour.

Rules, per skill, over the invocations in the window (``timestamp >= since``):

- ``success_rate = wins / total`` (a float, as upstream prints it).
- Durations: the known ``duration_ms`` values, negatives clamped to 0, sorted.
  ``p50 = d[(n-1)//2]`` (lower median), ``p95 = d[min(ceil(0.95*n)-1, n-1)]``
  (nearest rank, with upstream's f64 ``0.95*n``); both 0 when no duration is known.
- Recommendation: ``total < 10`` is insufficient; else rate >= 0.90 validated,
  rate < 0.30 archive, rate < 0.70 reextract, anything else insufficient.
- Order: success rate ascending, then name ascending (worst first).

Example::

    >>> percentiles([100, 110, 120, 130, 140, 150, 160, 170, 180, 190])
    (140, 190)
    >>> recommend(20, 0.25).value
    'archive'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final

from msgspec import Struct

from kei.errors import InputError

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "MIN_INVOCATIONS",
    "Invocation",
    "Recommendation",
    "SkillMetrics",
    "aggregate",
    "parse_since",
    "parse_success",
    "percentiles",
    "recommend",
    "skill_stream",
    "validate_invocation",
]

MIN_INVOCATIONS: Final = 10
VALIDATED_AT: Final = 0.90
ARCHIVE_BELOW: Final = 0.30
REEXTRACT_BELOW: Final = 0.70
DEFAULT_WINDOW_DAYS: Final = 30
STREAM_PREFIX: Final = "skill/"
_US: Final = 1_000_000
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION: Final = re.compile(r"(\d+)([smhdw])")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Recommendation(Enum):
    """What to do with a skill, upstream's four tiers (snake_case in JSON)."""

    VALIDATED = "validated"
    ARCHIVE = "archive"
    REEXTRACT = "reextract"
    INSUFFICIENT = "insufficient"

    @property
    def label(self) -> str:
        """The markdown label: upstream shouts only the archive tier, in capitals
        (``ARCHIVE``, no emphasis: its ``recommendation_label``)."""
        return "ARCHIVE" if self is Recommendation.ARCHIVE else self.value


class Invocation(Struct, frozen=True):
    """One recorded use of a skill, as the report needs it."""

    skill_name: str
    success: bool
    timestamp_us: int
    duration_ms: int | None = None


class SkillMetrics(Struct, frozen=True):
    """One row of the report."""

    skill_name: str
    total_invocations: int
    wins: int
    p50_duration_ms: int
    p95_duration_ms: int
    last_invoked_us: int
    recommendation: Recommendation

    @property
    def success_rate(self) -> float:
        return self.wins / self.total_invocations

    @property
    def last_invoked_ts(self) -> int:
        """Unix seconds, as upstream stores ``ts``."""
        return self.last_invoked_us // _US

    def to_dict(self) -> dict[str, Any]:
        """Upstream's JSON keys, plus ``wins`` and an RFC 3339 ``last_invoked``."""
        last = datetime.fromtimestamp(self.last_invoked_us / _US, tz=UTC)
        return {
            "skill_name": self.skill_name,
            "total_invocations": self.total_invocations,
            "wins": self.wins,
            "success_rate": self.success_rate,
            "p50_duration_ms": self.p50_duration_ms,
            "p95_duration_ms": self.p95_duration_ms,
            "last_invoked_ts": self.last_invoked_ts,
            "last_invoked": last.isoformat().replace("+00:00", "Z"),
            "recommendation": self.recommendation.value,
        }


def skill_stream(skill_name: str) -> str:
    """The stream every invocation of ``skill_name`` is appended to."""
    return STREAM_PREFIX + skill_name


def percentiles(durations: Iterable[int]) -> tuple[int, int]:
    """``(p50, p95)`` by index, exactly as upstream: lower median and nearest rank."""
    d = sorted(max(0, x) for x in durations)
    n = len(d)
    if n == 0:
        return 0, 0
    p95_index = min(math.ceil(0.95 * n) - 1, n - 1)
    return d[(n - 1) // 2], d[p95_index]


def recommend(total: int, rate: float) -> Recommendation:
    """Upstream's aggregator tiers (not its module doc's: see the module docstring)."""
    if total < MIN_INVOCATIONS:
        return Recommendation.INSUFFICIENT
    if rate >= VALIDATED_AT:
        return Recommendation.VALIDATED
    if rate < ARCHIVE_BELOW:
        return Recommendation.ARCHIVE
    if rate < REEXTRACT_BELOW:
        return Recommendation.REEXTRACT
    return Recommendation.INSUFFICIENT


def aggregate(invocations: Iterable[Invocation], *, since_us: int = 0) -> list[SkillMetrics]:
    """Per-skill metrics over invocations at or after ``since_us``, worst first."""
    groups: dict[str, list[Invocation]] = {}
    for inv in invocations:
        if inv.timestamp_us >= since_us:
            groups.setdefault(inv.skill_name, []).append(inv)
    rows = [_metrics(name, group) for name, group in groups.items()]
    return sorted(rows, key=lambda m: (m.success_rate, m.skill_name))


def _metrics(name: str, group: Sequence[Invocation]) -> SkillMetrics:
    total = len(group)
    wins = sum(1 for i in group if i.success)
    p50, p95 = percentiles(i.duration_ms for i in group if i.duration_ms is not None)
    return SkillMetrics(
        skill_name=name,
        total_invocations=total,
        wins=wins,
        p50_duration_ms=p50,
        p95_duration_ms=p95,
        last_invoked_us=max(i.timestamp_us for i in group),
        recommendation=recommend(total, wins / total),
    )


def validate_invocation(skill_name: str, duration_ms: int | None) -> None:
    """Upstream's ``record-skill`` checks, with its messages."""
    if not skill_name.strip():
        raise InputError("skill_name must not be empty")
    if duration_ms is not None and duration_ms < 0:
        raise InputError("duration_ms must be >= 0", hint=f"got {duration_ms}")


def parse_success(text: str) -> bool:
    """``--success 0|1`` (upstream's clap range), nothing else."""
    if text.strip() == "1":
        return True
    if text.strip() == "0":
        return False
    raise InputError(f"--success must be 0 or 1, got {text!r}")


# Times kei stores are 64-bit microseconds; a --since beyond them cannot be compared.
_MIN_US = -(1 << 63)
_MAX_US = (1 << 63) - 1
_MAX_SINCE_CHARS = 64


def parse_since(text: str, now_us: int, flag: str = "--since", *, ahead: bool = False) -> int:
    """``--since`` (or the time option ``flag`` names) as a microsecond timestamp,
    refused outside the stored 64-bit range; errors name ``flag``. ``ahead``: a
    duration counts forward from ``now_us`` (``--expires 30d``), not back."""
    since_us = _since_us(text, now_us, flag, -1 if ahead else 1)
    if not _MIN_US <= since_us <= _MAX_US:
        raise InputError(
            f"{flag} {text[:40]!r} is out of range",
            hint="give a time between 1970 and 9999, or a duration such as 30d",
        )
    return since_us


def _since_us(text: str, now_us: int, flag: str, back: int) -> int:
    """``--since`` as a microsecond timestamp: a duration back from ``now_us`` (``30d``,
    ``12h``, ``90m``, ``45s``, ``2w``), unix seconds (upstream's ``--since TS``), or an
    ISO 8601 date or time (UTC unless it names an offset)."""
    value = text.strip()
    if len(value) > _MAX_SINCE_CHARS:
        return _MAX_US + 1  # no date, time or duration is this long: out of range
    match = _DURATION.fullmatch(value)
    if match is not None:
        return now_us - back * int(match.group(1)) * _UNITS[match.group(2)] * _US
    if value.isdecimal():
        return int(value) * _US
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{flag} {text!r} is not a date, a time or a duration",
            hint="use e.g. 30d, 12h, 2026-11-01, 2026-11-01T12:00:00Z or unix seconds",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)
