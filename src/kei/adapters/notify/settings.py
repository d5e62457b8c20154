"""One channel's settings read and checked: each key's type, range and shape.

A value may be written ``env:VAR`` to be read from the environment instead (so a token
need not sit in a file). Every problem is one :class:`~kei.errors.NotifyConfigError`
line naming the source, the channel and the key; the value of a secret key is never
repeated in it. Secrets must be at least :data:`MIN_SECRET` characters: a shorter one
cannot be told apart from ordinary words, so no error text could be kept free of it.
URLs must be ``https``, or ``http`` to this machine (tests, local relays): a webhook
URL or token sent in clear text is a published secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from kei.domain.notify import SEVERITIES, Severity
from kei.errors import NotifyConfigError

MIN_SECRET: Final = 8
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
SECRET_KEYS: Final = frozenset({"url", "bot_token", "account_sid", "auth_token"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TOKEN = re.compile(r"[A-Za-z0-9:_.-]+")
_SID = re.compile(r"[A-Za-z0-9]+")


class Settings:
    """The raw settings of channel ``name`` from ``source`` (a file, or ``environment``)."""

    def __init__(
        self, source: str, name: str, raw: Mapping[str, object], environ: Mapping[str, str]
    ) -> None:
        self.source, self.name, self.raw, self.environ = source, name, raw, environ

    def fail(self, key: str, problem: str) -> NotifyConfigError:
        return NotifyConfigError(
            f"{self.source}: channels.{self.name}.{key}: {problem}",
            hint="see docs/notify.md, Channels",
        )

    def value(self, key: str) -> object:
        """The key's value, ``env:VAR`` resolved; None when the key is absent."""
        value = self.raw.get(key)
        if isinstance(value, str) and value.startswith("env:"):
            var = value[4:]
            if not _ENV_NAME.fullmatch(var):
                raise self.fail(key, f"env:{var[:40]!r} does not name an environment variable")
            found = self.environ.get(var, "")
            if not found:
                raise self.fail(key, f"environment variable {var} is not set")
            return found
        return value

    def text(self, key: str, *, required: bool = True, limit: int = 2048) -> str | None:
        value = self.value(key)
        if value is None:
            if required:
                raise self.fail(key, "missing")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and key == "chat_id":
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {type(value).__name__}")
        if not value.strip():
            raise self.fail(key, "is empty")
        if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise self.fail(key, f"must be one line of at most {limit} characters")
        if key in SECRET_KEYS and len(value) < MIN_SECRET:
            raise self.fail(key, f"too short for a secret (at least {MIN_SECRET} characters)")
        return value

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:  # text() already refused a missing key; this is for the type
            raise self.fail(key, "missing")
        return value

    def url(self, key: str, *, required: bool = True) -> str | None:
        """An https URL, or http to this machine."""
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            split = urlsplit(value)
            host = split.hostname
            _ = split.port  # a bad port raises here
        except ValueError:
            raise self.fail(key, "not a URL") from None
        if not host or split.scheme not in ("https", "http"):
            raise self.fail(key, "must be an https:// URL")
        if split.scheme == "http" and host not in LOOPBACK:
            raise self.fail(key, "must be https:// (http:// only to 127.0.0.1 or localhost)")
        return value

    def token(self, key: str, pattern: re.Pattern[str] = _TOKEN) -> str:
        """A secret that goes into a URL path or Basic credentials: no '/', '?', '#', spaces."""
        value = self.required(key)
        if not pattern.fullmatch(value):
            raise self.fail(key, "holds characters no such credential has")
        return value

    def sid(self, key: str) -> str:
        return self.token(key, _SID)

    def number(self, key: str, low: float, high: float) -> float | None:
        value = self.value(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.fail(key, "is not a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {type(value).__name__}")
        if not (math.isfinite(value) and low <= value <= high):
            raise self.fail(key, f"must be between {low:g} and {high:g}")
        return float(value)

    def severity(self, key: str) -> Severity | None:
        value = self.value(key)
        if value is None:
            return None
        for severity in SEVERITIES:
            if value == severity:
                return severity
        raise self.fail(key, f"must be one of {', '.join(SEVERITIES)}")

    def refuse_unknown(self, known: frozenset[str]) -> None:
        for key in self.raw:
            if key not in known:
                allowed = ", ".join(sorted(known))
                raise self.fail(str(key)[:40], f"unknown key (this kind takes {allowed})")
