"""What the two ``kei notify`` read models share: one table of rows found by one key
column and replaced whole when a page touches them (``notify_outbox``, ``notify_activity``).

``KeyedRows.stored`` loads the rows of the keys a page touches (one compiled ``IN``
look-up, ``KeyLookup``); the subclass folds the page into new rows; ``replace`` deletes
the stored ones and inserts the new ones in one go.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from kei.projections.base import KeyLookup, PagedTable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class KeyedRows(PagedTable):
    """A one-table projection of rows keyed by the table's first column."""

    version = 1
    _lookup: KeyLookup | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    def stored(self, conn: Connection, keys: Collection[Any]) -> dict[Any, list[Any]]:
        """The stored rows of ``keys``, by key, as lists in column order."""
        t = self.table
        if self._lookup is None or self._lookup.table is not t:
            self._lookup = KeyLookup(t, t.primary_key.columns[0].name)
        return {r[0]: list(r) for r in self._lookup(conn, sorted(keys))}

    def replace(
        self, conn: Connection, stored: Collection[Any], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Delete the rows of ``stored`` keys, then insert ``rows`` (the new ones of all)."""
        t = self.table
        if stored:
            key = t.primary_key.columns[0]
            conn.execute(t.delete().where(key.in_(sorted(stored))))
        self.insert(conn, list(rows))
