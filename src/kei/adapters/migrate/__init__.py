"""``kei migrate``'s driven side: target URLs, one connection class per dialect (SQLite,
PostgreSQL, MySQL/MariaDB) behind ``base.TargetDatabase``, and the migrations folder.

:func:`open_target` picks the class by the URL's dialect; each imports its driver only
when used, so PostgreSQL's and MySQL's are needed only where they are the target.
"""

from __future__ import annotations

from kei.adapters.migrate.base import TargetDatabase
from kei.adapters.migrate.urls import TargetURL

DEFAULT_LOCK_TIMEOUT = 300.0


def open_target(
    url: TargetURL, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, create: bool = False
) -> TargetDatabase:
    """A connection to the target; ``create`` lets a missing SQLite file be made."""
    dialect = url.target.dialect
    if dialect == "sqlite":
        from kei.adapters.migrate.sqlite import SqliteTarget

        assert url.path is not None
        return SqliteTarget(url.target, url.path, lock_timeout=lock_timeout, create=create)
    if dialect == "postgresql":
        from kei.adapters.migrate.postgres import PostgresTarget

        return PostgresTarget(url, lock_timeout=lock_timeout)
    from kei.adapters.migrate.mysql import MysqlTarget

    return MysqlTarget(url, lock_timeout=lock_timeout)
