"""Event stores, chosen by URL: ``sqlite:///path`` or ``postgresql://user@host:port/db``."""

from __future__ import annotations

from kei.adapters.store.base import EventStore
from kei.adapters.store.urls import StoreURL, postgres_missing


def open_store(
    url: str | StoreURL, *, create: bool = False, synchronous: str = "FULL", read_only: bool = False
) -> EventStore:
    """Open the store a URL names (text, parsed here, or a ``StoreURL``); ``create``
    allows a new SQLite file; ``read_only`` opens a SQLite file so that nothing can be
    written to it (``mode=ro``, see ``sqlite.read_only_uri``): a read-only copy or
    mount can be audited; on PostgreSQL it makes the open itself write nothing."""
    parsed = StoreURL.parse(url)
    if parsed.path is not None:
        from kei.adapters.store.sqlite import SQLiteStore

        return SQLiteStore(parsed.path, synchronous=synchronous, create=create, read_only=read_only)
    try:
        from kei.adapters.store.postgres import PostgresStore
    except ImportError as exc:
        raise postgres_missing() from exc
    return PostgresStore(parsed, read_only=read_only)


__all__ = ["EventStore", "StoreURL", "open_store"]
