"""The one form of times and money in every JSON answer kei gives, whatever the face:
``kei ... --json`` (applied by ``adapters/cli/output.json_line``) and ``kei mcp serve``'s
tool results and resources (``adapters/mcp/calls.py``, ``views.py``), so that no
answer can drift from it.

- **A moment** is an RFC 3339 UTC string with exactly six fractional digits,
  ``2026-12-07T13:45:00.123456Z`` (events are stamped in microseconds, so nothing is
  lost). The read models keep moments as integer microseconds under ``*_us`` keys;
  :data:`MOMENTS` names each such key and the key it is shown under (``forked_us`` ->
  ``forked_at``). A moment too far out for a calendar shows as ``null``.
- **A duration** stays an integer with its unit in the key (``duration_us``,
  ``duration_ms``): it is not a moment.
- **Money** is an integer ``micro_cents`` (1 cent = 1,000,000 µ¢, the exact amount
  kei sums) and beside it a ``usd`` string, the same amount in dollars as an exact
  decimal with at least two places (``"0.2178"``, ``"-1.50"``): a key ``X_micro_cents``
  gets ``X_usd`` (a rate ``X_micro``, micro-cents per million tokens, is shown as
  ``X_micro_cents`` and ``X_usd``). No rounded cents, no ``$`` sign.
- An event's ``payload`` is shown as it was signed: it is data, not an answer, and
  is left alone.
"""

from __future__ import annotations

from typing import Any, Final

MOMENTS: Final = {
    "forked_us": "forked_at",
    "finished_us": "finished_at",
    "written_us": "written_at",
    "started_us": "started_at",
    "ended_us": "ended_at",
    "since_us": "since",
    "until_us": "until",
    "before_us": "before",
    "last_invoked_us": "last_invoked_at",
    "last_used_us": "last_used_at",
    "first_seen_us": "first_seen_at",
    "last_seen_us": "last_seen_at",
    "occurred_at_us": "occurred_at",
    "recorded_us": "recorded_at",
    "timestamp_us": "time",
    "ts_us": "time",
    "at_us": "at",
    "requested_us": "requested_at",
    "updated_us": "updated_at",
    "not_before_us": "not_before",
    "not_after_us": "not_after",
    "lease_until_us": "lease_until",
    "created_us": "created_at",
    "expires_us": "expires_at",
    "revoked_us": "revoked_at",
}
VERBATIM: Final = frozenset({"payload"})
_MICRO_CENTS_PER_USD: Final = 100_000_000


def rfc3339(us: int | None) -> str | None:
    """Microseconds since the epoch as ``2026-12-07T13:45:00.123456Z`` (None when
    unknown or beyond the calendar)."""
    from datetime import UTC, datetime, timedelta  # here: a fast write never needs it

    if us is None:
        return None
    try:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return (epoch + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):
        return None


def usd(micro_cents: int) -> str:
    """An exact amount in micro-cents as a dollar decimal string: 21,780,000 -> ``0.2178``."""
    from decimal import Decimal  # here: a fast write never needs it

    text = format(Decimal(micro_cents) / Decimal(_MICRO_CENTS_PER_USD), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def json_form(value: Any) -> Any:
    """``value`` with every moment and amount in the one form (see the module docstring)."""
    if isinstance(value, dict):
        return _object(value)
    if isinstance(value, list | tuple):
        return [json_form(v) for v in value]
    return value


def json_object(obj: dict[str, Any]) -> dict[str, Any]:
    """``json_form`` of one answer object, typed as one."""
    return _object(obj)


def _object(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in VERBATIM:
            out[key] = value
        elif key in MOMENTS and (value is None or type(value) is int):
            out[MOMENTS[key]] = rfc3339(value)
        else:
            out[key] = json_form(value)
        _money(out, key, value)
    return out


def _money(out: dict[str, Any], key: str, value: Any) -> None:
    """Beside an amount ``X_micro_cents`` (or an older ``X_micro``, shown renamed), its
    ``X_usd``."""
    if not key.endswith(("micro_cents", "_micro")) or not (value is None or type(value) is int):
        return
    stem = key.removesuffix("micro_cents").removesuffix("micro")
    if key.endswith("_micro"):
        del out[key]
        out[f"{stem}micro_cents"] = value
    out[f"{stem}usd"] = None if value is None else usd(value)
