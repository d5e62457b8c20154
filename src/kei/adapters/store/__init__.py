"""Event stores, chosen by URL: ``sqlite:///path`` or ``postgresql://user@host:port/db``."""

from __future__ import annotations

from kei.adapters.store.base import EventStore
from kei.errors import InputError


def open_store(url: str, *, create: bool = False, synchronous: str = "FULL") -> EventStore:
    """Open the store a URL names; ``create`` allows a new SQLite file."""
    if url.startswith("sqlite:///"):
        from kei.adapters.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///") :], synchronous=synchronous, create=create)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        try:
            from kei.adapters.store.postgres import PostgresStore
        except ImportError as exc:
            raise InputError(
                "PostgreSQL support is not installed", hint="pip install 'kei[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise InputError(
        f"unsupported store URL {url!r}",
        hint="use sqlite:///path/ledger.db or postgresql://user@host:port/db",
    )


__all__ = ["EventStore", "open_store"]
