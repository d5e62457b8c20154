"""Store and broker URLs: parsed once into a ``StoreURL``, shown never with a secret.

``StoreURL.parse`` is the one place a store URL is taken apart: the scheme (which
store), the file of a SQLite store, the form shown in messages, the URL SQLAlchemy
opens for the read models, and the connection arguments libpq gets for PostgreSQL.
The PostgreSQL part is parsed by libpq's own parser (``conninfo_to_dict``), so
``?password=``, ``?user=``, ``?host=``, ``?port=`` and percent-escapes mean what they
mean to ``psql``; a URL that does not parse is one line that shows it redacted.

Every message, report, JSON document and log line that names a database or Redis URL
shows ``redact_url(url)``: the password of the user part and the value of every
query parameter that carries a secret (``password``, ``sslpassword``, anything named
like a password, secret or token) become ``***``. A URL that cannot be parsed is
shown as its scheme only, since which part of it is the secret cannot be known.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

from msgspec import Struct

from kei.errors import InputError, StoreError

HIDDEN: Final = "***"
_SECRET_KEY: Final = re.compile(r"pass|pwd|secret|token|auth|credential|api.?key", re.I)
SQLITE_PREFIX: Final = "sqlite:///"
POSTGRES_SCHEMES: Final = ("postgresql", "postgres", "postgresql+psycopg")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NAMED: Final = ("dbname", "host", "port", "user", "password")
_DEFAULTS: Final = (("host", "127.0.0.1"), ("port", 5432), ("user", "postgres"), ("password", ""))


class StoreURL(Struct, frozen=True):
    """A store URL taken apart once, for everything that opens or names the store.

    ``text`` is the URL as given and may hold a password: it goes to drivers only,
    while messages show ``redacted`` (and ``repr`` shows nothing else). ``scheme`` is
    ``"sqlite"`` or ``"postgresql"`` (``postgres://`` and ``postgresql+psycopg://``
    mean the latter); ``path`` is the SQLite file, None for PostgreSQL.
    """

    text: str
    scheme: str
    redacted: str
    sqlalchemy: str
    """The URL of the read models' SQLAlchemy engine (psycopg 3 for PostgreSQL)."""
    path: Path | None = None
    named: tuple[tuple[str, Any], ...] = ()
    """libpq's database, host, port, user and password (with kei's defaults)."""
    options: tuple[tuple[str, str], ...] = ()
    """libpq's other options (``sslmode``, ``application_name``...), kept as given."""

    @classmethod
    def parse(cls, url: str | StoreURL) -> StoreURL:
        """The parts of ``url`` (a ``StoreURL`` is returned as it is); InputError for a
        URL no store serves, StoreError for a malformed PostgreSQL URL."""
        if isinstance(url, StoreURL):
            return url
        if url.startswith(SQLITE_PREFIX):
            return cls(url, "sqlite", url, url, Path(url[len(SQLITE_PREFIX) :]))
        if url.partition("://")[0] in POSTGRES_SCHEMES:
            return _postgres(url)
        raise InputError(
            f"unsupported store URL {redact_url(url)!r}",
            hint="use sqlite:///path/ledger.db or postgresql://user@host:port/db",
        )

    @property
    def connect_args(self) -> dict[str, Any]:
        """The named libpq arguments, as keyword arguments (a new dict each time)."""
        return dict(self.named)

    @property
    def libpq(self) -> dict[str, Any]:
        """Every libpq argument: the named ones and the options (a new dict each time)."""
        return {**dict(self.named), **dict(self.options)}

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted!r})"


def sqlite_path(url: str | StoreURL) -> Path | None:
    """The SQLite file a store URL names, None for any other store: the cheap half of
    ``StoreURL.parse`` for callers that only place files beside a SQLite store (it
    needs no PostgreSQL driver and raises nothing)."""
    if isinstance(url, StoreURL):
        return url.path
    return Path(url[len(SQLITE_PREFIX) :]) if url.startswith(SQLITE_PREFIX) else None


def parse_url(url: str) -> dict[str, Any]:
    """The named connection arguments of a PostgreSQL URL (``StoreURL.connect_args``)."""
    if url.partition("://")[0] not in POSTGRES_SCHEMES:
        raise InputError(f"not a PostgreSQL URL: {redact_url(url)!r}")
    return StoreURL.parse(url).connect_args


def postgres_missing() -> InputError:
    """The error of a PostgreSQL URL where kei's PostgreSQL extra is not installed."""
    return InputError("PostgreSQL support is not installed", hint="pip install 'kei[postgres]'")


def _postgres(url: str) -> StoreURL:
    """Parse with libpq's parser; the scheme is one of ``POSTGRES_SCHEMES``."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as exc:
        raise postgres_missing() from exc
    rest = url.partition("://")[2]
    if _BAD_ESCAPE.search(url):
        raise _malformed(url, "a '%' that does not start a two-digit hex escape")
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port
        given = conninfo_to_dict("postgresql://" + rest)
    except (ValueError, psycopg.Error) as exc:
        raise _malformed(url, _without_values(str(exc))) from None
    named = _named(url, given)
    options = tuple(
        (k, str(v)) for k, v in given.items() if k not in _NAMED and v not in (None, "")
    )
    return StoreURL(
        url, "postgresql", redact_url(url), "postgresql+psycopg://" + rest, None, named, options
    )


def _named(url: str, given: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The named arguments over kei's defaults; the database is required, the port a
    number in range."""
    args: dict[str, Any] = dict(_DEFAULTS)
    args.update({k: v for k, v in given.items() if k in _NAMED and v not in (None, "")})
    if not args.get("dbname"):
        raise InputError(
            f"PostgreSQL URL {redact_url(url)!r} names no database",
            hint="use postgresql://user@host:port/dbname",
        )
    try:
        args["port"] = int(args["port"])
    except (TypeError, ValueError):
        raise _malformed(url, "the port is not a number") from None
    if not 0 < args["port"] < 65536:
        raise _malformed(url, "the port is out of range 1-65535")
    return tuple(args.items())


def _malformed(url: str, why: str) -> StoreError:
    return StoreError(
        f"malformed PostgreSQL URL {redact_url(url)}: {why}",
        hint="use postgresql://user:password@host:port/dbname (percent-escape special "
        "characters in the password)",
    )


def _without_values(message: str) -> str:
    """The parser's message on its first line, with quoted values (maybe a secret:
    ``postgresql://user:secret/db`` reads as host ``user``, port ``secret``) hidden."""
    first = message.strip().splitlines()[0] if message.strip() else "it does not parse"
    return re.sub(r"'[^']*'", "'***'", re.sub(r'"[^"]*"', '"***"', first))


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
