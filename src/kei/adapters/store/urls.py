"""Store and broker URLs as kei shows them: never with a secret in them.

Every message, report, JSON document and log line that names a database or Redis URL
shows ``redact_url(url)``: the password of the user part and the value of every
query parameter that carries a secret (``password``, ``sslpassword``, anything named
like a password, secret or token) become ``***``. A URL that cannot be parsed is
shown as its scheme only, since which part of it is the secret cannot be known.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, quote, urlsplit

HIDDEN: Final = "***"
_SECRET_KEY: Final = re.compile(r"pass|pwd|secret|token|auth|credential|api.?key", re.I)


def redact_url(url: str) -> str:
    """``url`` with its secrets replaced by ``***`` (see the module docstring)."""
    scheme, sep, _ = url.partition("://")
    if scheme.startswith("sqlite"):
        return url  # a file path: nothing secret, and kept byte for byte
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - "user:secret" without a host reads as a bad port
        netloc = _redact_userinfo(parts.netloc)
        query = _redact_query(parts.query)
    except ValueError:
        return f"{scheme}{sep}{HIDDEN}" if sep else HIDDEN
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    # a '#' in an unquoted password starts a "fragment": it is shown only when no
    # query value was hidden
    fragment = parts.fragment if query == parts.query or not parts.fragment else HIDDEN
    return shown + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")


def _redact_userinfo(netloc: str) -> str:
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{HIDDEN}@{host}" if colon else netloc


def _redact_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_SECRET_KEY.search(k) for k, _ in pairs):
        return query
    return "&".join(
        f"{quote(k, safe='')}={HIDDEN if _SECRET_KEY.search(k) else quote(v, safe='')}"
        for k, v in pairs
    )
