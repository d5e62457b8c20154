"""Event stores, chosen by URL: ``sqlite:///path`` or ``postgresql://user@host:port/db``."""

from __future__ import annotations

from kei.adapters.store.base import EventStore
from kei.adapters.store.urls import redact_url
from kei.errors import InputError


def open_store(
    url: str, *, create: bool = False, synchronous: str = "FULL", read_only: bool = False
) -> EventStore:
    """Open the store a URL names; ``create`` allows a new SQLite file; ``read_only``
    opens a SQLite file so that nothing can be written to it (``mode=ro``, see
    ``sqlite.read_only_uri``): a read-only copy or mount can be audited."""
    if url.startswith("sqlite:///"):
        from kei.adapters.store.sqlite import SQLiteStore

        return SQLiteStore(
            url[len("sqlite:///") :], synchronous=synchronous, create=create, read_only=read_only
        )
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        try:
            from kei.adapters.store.postgres import PostgresStore
        except ImportError as exc:
            raise InputError(
                "PostgreSQL support is not installed", hint="pip install 'kei[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise InputError(
        f"unsupported store URL {redact_url(url)!r}",
        hint="use sqlite:///path/ledger.db or postgresql://user@host:port/db",
    )


__all__ = ["EventStore", "open_store"]
