"""RFC 9457 problem details: the one shape of every error ``kei serve`` answers.

A handler raises :class:`ApiError` (or lets a ``KeiError`` through, mapped by
:func:`from_kei_error`); Starlette's own errors (404, 405) and anything unexpected are
turned into problems by the exception handlers of ``app.py``. A response never carries
a traceback: an unexpected error is logged and answered with its type's name only.
"""

from __future__ import annotations

import logging
from typing import Final

import msgspec
from starlette.responses import Response

from kei.errors import (
    AgentRuleError,
    ConcurrencyError,
    ContentionError,
    InputError,
    KeiError,
    LeakBlockedError,
    StoreError,
    UnknownAgentError,
)
from kei.limits import LIMITS

log = logging.getLogger(__name__)
BASE: Final = "https://kei.dev/problems/"
MEDIA: Final = "application/problem+json"
TITLES: Final = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Content too large",
    415: "Unsupported media type", 422: "Unprocessable content", 429: "Too many requests",
    500: "Internal error", 503: "Service unavailable",
}  # fmt: skip


class ProblemBody(msgspec.Struct, kw_only=True):
    """The body of every error (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str


class ApiError(Exception):
    """An error answer: its status, a slug for ``type``, and a one-line detail."""

    def __init__(
        self, status: int, slug: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, " ".join(detail.split())
        self.headers = headers or {}

    def body(self) -> ProblemBody:
        title = TITLES.get(self.status, "Error")
        detail = self.detail[: LIMITS.max_text_chars]
        return ProblemBody(type=BASE + self.slug, title=title, status=self.status, detail=detail)

    def response(self) -> Response:
        return Response(
            msgspec.json.encode(self.body()),
            status_code=self.status,
            media_type=MEDIA,
            headers=self.headers,
        )


_BY_CLASS: Final[tuple[tuple[type[KeiError], int, str], ...]] = (
    (UnknownAgentError, 404, "unknown-agent"),
    (LeakBlockedError, 422, "leak-blocked"),
    (ConcurrencyError, 409, "conflict"),
    (InputError, 422, "invalid-input"),
    (AgentRuleError, 409, "rule-refused"),
    (ContentionError, 503, "contention"),
    (StoreError, 503, "store-unavailable"),
)


def from_kei_error(exc: KeiError) -> ApiError:
    """A kei error as a problem: the class decides the status, the message (and hint)
    is the detail, as the CLI prints them."""
    detail = str(exc) + (f" (hint: {exc.hint})" if exc.hint else "")
    for cls, status, slug in _BY_CLASS:
        if isinstance(exc, cls):
            return ApiError(status, slug, detail)
    return ApiError(409, "refused", detail)


def internal(exc: BaseException) -> ApiError:
    """An unexpected error: logged with its traceback, answered with its type only."""
    log.error("unexpected error answering a request", exc_info=exc)
    return ApiError(500, "internal", f"internal error ({type(exc).__name__}); see the server log")
