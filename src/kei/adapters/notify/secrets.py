"""Keeping a channel's secrets out of every string it reports.

A webhook URL *is* its secret (Slack, Discord), a Telegram bot token sits in the request
path, and Twilio's SID and auth token make the Basic credentials. HTTP clients put the
request URL into their exception text, and providers echo parts of a request in their
error bodies, so upstream's errors carried the credentials into logs. A channel here
never uses an exception's text: it writes its errors itself from the status, the
failure class and the provider's code, and whatever provider text it adds passes
:meth:`Secrets.scrub` first, which removes every secret in every form it may come back
in (as is, percent-encoded, JSON-escaped, the URL without its scheme, its path, the
long parts of its path, the Basic credentials in base64). :meth:`Secrets.seal` checks
the finished string once more and withholds it whole when a secret is still in it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, urlsplit

from msgspec import Struct

REDACTED: Final = "[redacted]"
WITHHELD: Final = "error text withheld: it held a configured secret"
MIN_PART: Final = 8
"""URL path parts shorter than this are not treated as secrets (``api``, ``webhooks``)."""


def _forms(value: str) -> set[str]:
    """``value`` as it may come back: as is, percent-encoded, JSON-escaped."""
    forms = {value, quote(value, safe=""), quote(value, safe="/:@"), json.dumps(value)[1:-1]}
    return {f for f in forms if f}


def url_parts(url: str) -> list[str]:
    """The secret-bearing parts of a webhook URL: itself, without its scheme, its path
    and query, and each path part of :data:`MIN_PART` characters or more."""
    parts = [url]
    split = urlsplit(url)
    if split.netloc:
        parts.append(url.split("://", 1)[-1])
    tail = split.path + (f"?{split.query}" if split.query else "")
    if len(tail) >= MIN_PART:
        parts.append(tail)
    parts += [p for p in split.path.split("/") if len(p) >= MIN_PART]
    return parts


def basic_credentials(user: str, password: str) -> str:
    """The base64 text of an HTTP Basic ``Authorization`` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Secrets(Struct, frozen=True):
    """Every form of one channel's secrets, longest first."""

    forms: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str]) -> Secrets:
        found: set[str] = set()
        for value in values:
            if value:
                found |= _forms(value)
        return cls(tuple(sorted(found, key=lambda f: (-len(f), f))))

    def holds(self, text: str) -> bool:
        """Is any secret, in any form, in ``text``?"""
        return any(f in text for f in self.forms)

    def scrub(self, text: str) -> str | None:
        """``text`` with every secret replaced by :data:`REDACTED`; None when a secret
        is still there (a replacement can join two pieces into a new one)."""
        for form in self.forms:
            text = text.replace(form, REDACTED)
        return None if self.holds(text) else text

    def seal(self, text: str) -> str:
        """The finished error text, or :data:`WITHHELD` when a secret is still in it."""
        return WITHHELD if self.holds(text) else text
