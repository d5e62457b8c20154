"""A ``--target`` URL taken apart once: which driver, how to connect, and the target's
credential-free identity (``kei.domain.migrate.target``).

URLs are SQLAlchemy's (parsed by ``sqlalchemy.engine.make_url``): ``sqlite:///rel.db``
(relative), ``sqlite:////abs/app.db`` (absolute), ``postgresql://user:pw@host:5432/db``
(also ``postgres://`` and ``postgresql+psycopg://``), ``mysql+pymysql://user@host/db``
(also ``mysql://``, ``mariadb://``, ``mariadb+pymysql://``: PyMySQL serves all of them).
Upstream kei-migrate's SQLite forms ``sqlite://data.db`` and ``sqlite:data.db`` (sqlx's)
name a relative file, as there. PostgreSQL query parameters are libpq options and are
passed on; MySQL takes only the few listed in ``_MYSQL_OPTIONS``.

The password and user name go to the driver only: ``TargetURL`` shows nothing else
(``repr``), and every message names the target by its identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from msgspec import Struct

from kei.adapters.store.urls import redact_url
from kei.domain.migrate.target import Target, server_target, sqlite_target
from kei.errors import InputError

SQLITE: Final = ("sqlite", "sqlite+pysqlite")
POSTGRES: Final = ("postgresql", "postgres", "postgresql+psycopg")
MYSQL: Final = ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql")
_SQLITE_OPTIONS: Final = frozenset({"mode"})  # sqlx's ?mode=rwc, accepted and unneeded
_MYSQL_OPTIONS: Final = frozenset(
    {"unix_socket", "charset", "connect_timeout", "ssl_ca", "ssl_cert", "ssl_key"}
)
_HINT: Final = (
    "use sqlite:////abs/path.db, postgresql://user@host:5432/db or "
    "mysql+pymysql://user@host:3306/db"
)


class TargetURL(Struct, frozen=True):
    """A parsed target: its identity, and the driver's arguments (which may hold a
    password, so ``repr`` shows only the identity)."""

    target: Target
    path: Path | None = None
    """The SQLite file (resolved), None for a server."""
    connect: tuple[tuple[str, Any], ...] = ()
    """The driver's keyword arguments (server dialects)."""

    def connect_args(self) -> dict[str, Any]:
        return dict(self.connect)

    def __repr__(self) -> str:
        return f"TargetURL({self.target.identity!r})"


def parse_target(url: str) -> TargetURL:
    """``url`` taken apart; a one-line InputError for anything kei cannot migrate."""
    if not url:
        raise InputError("no target database given", hint="pass --target URL or set DATABASE_URL")
    if url.startswith("sqlite:") and not url.startswith("sqlite://"):
        return _sqlite(url[len("sqlite:") :], {})  # sqlx's sqlite:data.db
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        port = parsed.port
    except (ArgumentError, ValueError):
        raise InputError(f"target URL {redact_url(url)!r} does not parse", hint=_HINT) from None
    query = {k: v if isinstance(v, str) else ",".join(v) for k, v in parsed.query.items()}
    scheme = parsed.drivername
    if scheme in SQLITE:
        joined = "/".join(p for p in (parsed.host, parsed.database) if p)
        return _sqlite(joined, query)
    if scheme in POSTGRES:
        return _postgres(parsed, port, query)
    if scheme in MYSQL:
        return _mysql(parsed, port, query)
    raise InputError(f"unsupported target URL scheme {scheme!r}", hint=_HINT)


def _sqlite(path: str, query: dict[str, str]) -> TargetURL:
    unknown = sorted(set(query) - _SQLITE_OPTIONS)
    if unknown:
        raise InputError(f"SQLite target URL option {unknown[0]!r} is not supported", hint=_HINT)
    if path in ("", ":memory:"):
        raise InputError(
            "an in-memory SQLite database cannot be migrated (it ends with the command)",
            hint=_HINT,
        )
    if "\x00" in path:
        raise InputError("the target URL holds a control character", hint=_HINT)
    resolved = Path(path).resolve()
    return TargetURL(sqlite_target(str(resolved)), path=resolved)


def _postgres(parsed: Any, port: int | None, query: dict[str, str]) -> TargetURL:
    host = parsed.host or query.get("host") or "localhost"
    target = server_target("postgresql", host, port, parsed.database or query.get("dbname", ""))
    args: dict[str, Any] = {**query, "dbname": parsed.database or query.get("dbname")}
    _put(args, host=parsed.host, port=port, user=parsed.username, password=parsed.password)
    return TargetURL(target, connect=tuple(sorted(args.items())))


def _mysql(parsed: Any, port: int | None, query: dict[str, str]) -> TargetURL:
    unknown = sorted(set(query) - _MYSQL_OPTIONS)
    if unknown:
        raise InputError(
            f"MySQL target URL option {unknown[0]!r} is not supported",
            hint=f"supported: {', '.join(sorted(_MYSQL_OPTIONS))}",
        )
    host = parsed.host or query.get("unix_socket") or "localhost"
    target = server_target("mysql", host, port, parsed.database or "")
    args: dict[str, Any] = dict(query)
    if "connect_timeout" in args:
        try:
            args["connect_timeout"] = int(args["connect_timeout"])
        except ValueError:
            raise InputError("MySQL option connect_timeout must be whole seconds") from None
    args["database"] = parsed.database
    _put(args, host=parsed.host, port=port, user=parsed.username, password=parsed.password)
    return TargetURL(target, connect=tuple(sorted(args.items())))


def _put(args: dict[str, Any], **values: Any) -> None:
    args.update({k: v for k, v in values.items() if v not in (None, "")})
