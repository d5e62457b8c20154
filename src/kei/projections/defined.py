"""A projection's ``Table`` attributes, which exist only once ``define`` has run.

A projection is built first and handed its ``MetaData`` later, by the engine, so
until then it has no tables. Reading one too early is a bug in the caller; the
descriptor says so by name rather than handing ``None`` to a query, and declaring
``items = DefinedTable()`` replaces a private field and a checking property per table.

Example::

    class Memory:
        items = DefinedTable()

        def define(self, metadata: MetaData) -> list[Table]:
            self.items = Table(f"{self.name}_items", metadata, ...)
            return [self.items]
"""

from __future__ import annotations

from typing import Any, Protocol, Self, overload

from sqlalchemy import Table


class _Named(Protocol):
    name: str


class DefinedTable:
    """A ``Table`` attribute set by ``define``; read before it, raises ``RuntimeError``.

    The table is kept in the instance under the attribute's name with a leading
    underscore (``items`` in ``_items``)."""

    slot = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.slot = "_" + name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: _Named, owner: type[Any] | None = None) -> Table: ...

    def __get__(self, obj: _Named | None, owner: type[Any] | None = None) -> Self | Table:
        if obj is None:
            return self
        table: Table | None = getattr(obj, self.slot, None)
        if table is None:
            raise RuntimeError(f"projection {obj.name} used before define()")
        return table

    def __set__(self, obj: _Named, table: Table) -> None:
        setattr(obj, self.slot, table)
