"""What a store does with its schema version (``schema.py``): check it on open, stamp
a new store, refuse writes while it is behind, and run the steps on request.

A mixin of ``SqlStore``: each store only says how to open a plain connection of its
own for this (``_schema_conn``), since the steps manage their own transactions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from kei.adapters.store import schema
from kei.adapters.store.schema import STEPS, StepDone, StoreStep
from kei.errors import StoreError


class Versioned:
    """The schema-version half of a store (see the module docstring)."""

    store_steps: ClassVar[tuple[StoreStep, ...]] = STEPS
    """The store migrations this code knows (tests swap in their own)."""
    dialect_name: ClassVar[str]
    name: str
    schema_version: int = 0
    """The version found on open (0: no tables yet), or written since."""
    _behind: StoreError | None = None

    @contextlib.contextmanager
    def _schema_conn(self) -> Iterator[Any]:
        """A plain autocommit connection to the store's database."""
        raise NotImplementedError
        yield  # pragma: no cover

    @property
    def code_version(self) -> int:
        return schema.code_version(self.store_steps)

    def _check_schema(self, conn: Any, *, writable: bool) -> None:
        """Refuse a newer store, stamp or check an unversioned one, note an older one."""
        found = schema.open_version(
            conn, self.dialect_name, self.name, writable=writable, steps=self.store_steps
        )
        self._found(found)

    def _found(self, version: int) -> None:
        self.schema_version = version
        behind = 0 < version < self.code_version
        self._behind = schema.behind_error(self.name, version, self.store_steps) if behind else None

    def _refuse_if_behind(self) -> None:
        """Called first by every write of events."""
        if self._behind is not None:
            raise self._behind

    def _stamp_created(self) -> None:
        """Tables were just created: a new store gets the code's version."""
        with self._schema_conn() as conn:
            self._found(schema.stamp_fresh(conn, self.dialect_name, self.store_steps))

    def stored_schema_version(self) -> int:
        """The version stored now (another process may have moved it since open)."""
        with self._schema_conn() as conn:
            version = schema.read_version(conn, self.dialect_name)
        schema.refuse_newer(self.name, version, self.store_steps)
        return version or (1 if self.schema_version else 0)

    def upgrade_schema(self) -> list[StepDone]:
        """Run the pending store steps (``kei migrate up``); the steps committed here."""
        with self._schema_conn() as conn:
            done = schema.upgrade(conn, self.dialect_name, self.name, self.store_steps)
            self._found(schema.read_version(conn, self.dialect_name))
        return done
