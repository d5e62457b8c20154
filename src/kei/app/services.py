"""The ``app/`` services one server calls, opened once over its ledger and closed with it.

The same services the CLI opens per command (``context.service_scope``); a server keeps
them, so each call only catches its read models up with what is new. One ``Services``
is used from one thread at a time (``kei mcp serve``'s worker thread, or each of
``kei serve``'s threads its own), as the CLI uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, TypeVar, cast

from kei.app.closing import Closing

if TYPE_CHECKING:
    from kei.app.agent_writes import AgentWriter
    from kei.app.agents import AgentService
    from kei.app.costs import CostService
    from kei.app.ledger.ledger import Ledger
    from kei.app.memory import MemoryService
    from kei.app.retro import RetroService
    from kei.app.routing import RouteService
    from kei.app.skills import SkillService
    from kei.domain.catalog.catalog import Catalog


_Kept = TypeVar("_Kept", bound=Closing)


class Services(Closing):
    """Each service made on first use; ``seal_key`` seals their read models as the CLI's."""

    def __init__(self, ledger: Ledger, catalog: Catalog, *, seal_key: bytes | None) -> None:
        self.ledger, self.catalog, self.seal_key = ledger, catalog, seal_key
        self._open = ExitStack()
        self._made: dict[str, Closing] = {}

    def close(self) -> None:
        self._open.close()

    def _kept(self, name: str, make: Callable[[], _Kept]) -> _Kept:
        """The service ``name``: made on first use, then kept (its read models stay
        caught up between calls) and closed with the server."""
        if name not in self._made:
            self._made[name] = self._open.enter_context(make())
        return cast(_Kept, self._made[name])

    def agents(self) -> AgentService:
        from kei.app.agents import AgentService

        return self._kept("agents", lambda: AgentService(self.ledger, seal_key=self.seal_key))

    def agent_writes(self) -> AgentWriter:
        """The agent lifecycle writes: they decide from the streams, so no read model
        is opened for them (``app/agent_writes.py``)."""
        from kei.app.agent_writes import AgentWriter

        return AgentWriter(self.ledger)

    def costs(self) -> CostService:
        from kei.app.costs import CostService

        return self._kept("costs", lambda: CostService(self.ledger, seal_key=self.seal_key))

    def memory(self) -> MemoryService:
        from kei.app.memory import MemoryService

        return self._kept("memory", lambda: MemoryService(self.ledger, seal_key=self.seal_key))

    def routes(self) -> RouteService:
        from kei.app.routing import RouteService

        return self._kept(
            "routes", lambda: RouteService(self.ledger, self.catalog, seal_key=self.seal_key)
        )

    def skills(self) -> SkillService:
        from kei.app.skills import SkillService

        return SkillService(self.ledger, seal_key=self.seal_key)

    def retro(self) -> RetroService:
        """Retrospectives (read only here: the matrix, which only ingesting uses, is the
        shipped one)."""
        from kei.adapters.files.leaks import shipped_matrix
        from kei.app.retro import RetroService

        return self._kept(
            "retro", lambda: RetroService(self.ledger, shipped_matrix(), seal_key=self.seal_key)
        )
