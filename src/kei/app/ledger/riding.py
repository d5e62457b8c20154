"""Riders: events a driving adapter adds to the batch a service appends.

A service decides and appends its own batch (``AgentService.fork``,
``CostService.record``, …); an adapter that must record *that* the change was asked
for (``kei mcp serve``'s ``mcp.tool.called``) needs its record in the same batch, so
the change and its record land in one transaction or not at all. Copying each service
to take an extra payload would spread one concern over every use case; instead the
adapter wraps its call in ``ledger.riding(rider)`` and the ledger asks the rider for
its events at every append attempt inside that block (a retried write asks again, so
a duration or a count is taken when the batch is sealed), until one attempt lands.

The rider's events pass the same limits and leak matrix as the service's: they are
part of the batch before anything is checked or signed. ``Ledger.append`` still
returns only the service's events, so no service sees a difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import Protocol

from kei.app.ledger.appending import NewEvent
from kei.domain.log.recorded import RecordedEvent

__all__ = ["RIDER", "Rider"]


class Rider(Protocol):
    """What rides along with the next batch appended in its block."""

    def events(self, batch: Sequence[NewEvent]) -> Sequence[NewEvent]:
        """The events to add after ``batch`` (the service's), or none once it has landed."""
        ...

    def landed(self, recorded: Sequence[RecordedEvent]) -> None:
        """The rider's events as recorded: the batch committed."""
        ...


RIDER: ContextVar[Rider | None] = ContextVar("kei_ledger_rider", default=None)
"""The rider of the current thread or task: a context variable, so two calls served at
once never put their records in each other's batch."""
