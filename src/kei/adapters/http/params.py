"""Query parameters, checked: a bad one is a 422 problem naming it, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from kei.adapters.http.problems import ApiError


def integer(
    request: Request, name: str, default: int | None = None, *, least: int = 0
) -> int | None:
    """``?name=N``, a whole number of at least ``least`` (``default`` when absent)."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(
            422, "invalid-parameter", f"{name} must be a whole number, got {text!r}"
        ) from None
    if value < least:
        raise ApiError(422, "invalid-parameter", f"{name} must be at least {least}, got {value}")
    return value


def moment(request: Request, name: str) -> int | None:
    """``?name=`` as an RFC 3339 time or a date (UTC), in microseconds; None when absent."""
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422, "invalid-parameter",
            f"{name} must be an RFC 3339 time or a date (2026-12-08T00:00:00Z), got {text!r}",
        ) from None  # fmt: skip
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1_000_000)


def choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    """``?name=`` among ``allowed``."""
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise ApiError(
            422, "invalid-parameter", f"{name} must be one of {', '.join(allowed)}, got {value!r}"
        )
    return value
