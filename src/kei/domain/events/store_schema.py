"""The signed history of kei's own store schema: its migrations and projection rebuilds.

``kei migrate up`` with no ``--target`` runs the store's steps
(``kei.adapters.store.schema``) and rebuilds every projection whose code version
differs from its stored one; each step appends one event to the ``kei-store`` stream,
after the change committed. A run killed between a step's commit and its event leaves
the store ahead of its history; the next ``kei migrate up`` appends the missing
``store.migrated`` with ``recovered=True``. Digests are ``sha256:<hex>`` as
``kei projections status`` prints them.
"""

from __future__ import annotations

from typing import Final, Literal

from kei.domain.events.payload import Payload

STORE_STREAM: Final = "kei-store"
StoreDialect = Literal["sqlite", "postgresql"]


class StoreMigrated(Payload, frozen=True, kw_only=True):
    """The store's schema moved from ``from_version`` to ``to_version`` in one
    transaction."""

    from_version: int
    to_version: int
    """The store's schema version before and after the step (``kei_meta`` or
    ``user_version``)."""
    dialect: StoreDialect
    summary: str
    """What the step did, as its registry entry says."""
    duration_us: int | None = None
    recovered: bool = False
    """Found already done by a later run: the run that did it was killed before its
    event (``duration_us`` is then unknown)."""


class ProjectionRebuilt(Payload, frozen=True, kw_only=True):
    """A read model was rebuilt from the log because its code version changed.

    ``shadow``: built into shadow tables and swapped in with one transaction (reads
    kept answering from the old tables until then); else dropped and rebuilt in
    place. ``position`` and ``digest``: where the rebuilt state stood and its digest.
    """

    name: str
    from_version: int
    to_version: int
    position: int
    digest: str
    dialect: StoreDialect
    shadow: bool
    duration_us: int
