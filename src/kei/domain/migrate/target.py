"""The database a migration runs on, named without credentials.

The identity is what events carry and what the stream is named after, so it holds
only what says *which* database: the dialect family, host, port and database name
(``postgresql://db.example:5432/app``, ``mysql://127.0.0.1:3306/shop``), or for SQLite
the file's absolute, resolved path (``sqlite:////srv/app.db``). Never the user name,
the password or a query parameter: those are how one connects, not what to, and may
be secret. Two URLs that reach the same database by different host names
(``localhost`` and ``127.0.0.1``) get different identities; the database-side lock
still serialises their runners.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from msgspec import Struct

from kei.domain.events.migrate import migrate_stream
from kei.errors import InputError
from kei.limits import LIMITS

Dialect = Literal["sqlite", "postgresql", "mysql"]
DEFAULT_PORTS: Final[dict[str, int]] = {"postgresql": 5432, "mysql": 3306}
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class Target(Struct, frozen=True):
    """A database's dialect and credential-free identity."""

    dialect: Dialect
    identity: str

    @property
    def stream(self) -> str:
        """The stream its history is appended to: ``migrate/<identity>``."""
        return migrate_stream(self.identity)


def sqlite_target(resolved_path: str) -> Target:
    """A SQLite file, by its absolute resolved path."""
    if not resolved_path.startswith("/"):
        raise ValueError("a SQLite target is named by its absolute path")
    return _checked("sqlite", f"sqlite:///{resolved_path}")


def server_target(dialect: Dialect, host: str, port: int | None, database: str) -> Target:
    """A PostgreSQL or MySQL/MariaDB database: host (or socket path), port, name."""
    if not database:
        raise InputError(
            f"the {dialect} target URL names no database",
            hint=f"use {dialect}://user@host:port/database",
        )
    shown_host = f"[{host}]" if ":" in host else host
    port = port if port is not None else DEFAULT_PORTS[dialect]
    if not 0 < port < 65536:
        raise InputError(f"the {dialect} target URL's port {port} is out of range 1-65535")
    return _checked(dialect, f"{dialect}://{shown_host.lower()}:{port}/{database}")


def _checked(dialect: Dialect, identity: str) -> Target:
    if _CONTROL.search(identity) or not identity.isprintable():
        raise InputError(
            "the target URL holds a control character", hint="check the --target value"
        )
    most = LIMITS.max_stream_chars - len(migrate_stream(""))
    if len(identity) > most:
        raise InputError(f"the target's name is over {most} characters (a path too long?)")
    return Target(dialect, identity)
