"""The ``app/`` services one server calls, opened once over its ledger and closed with it.

The same services the CLI opens per command (``context.service_scope``); a server keeps
them, so each call only catches its read models up with what is new. They are made and
used on the server's one worker thread (``calls.Calls``).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from kei.app.closing import Closing

if TYPE_CHECKING:
    from kei.app.agents import AgentService
    from kei.app.costs import CostService
    from kei.app.ledger.ledger import Ledger
    from kei.app.memory import MemoryService
    from kei.app.retro import RetroService
    from kei.app.routing import RouteService
    from kei.app.skills import SkillService
    from kei.domain.catalog.catalog import Catalog


class Services(Closing):
    """Each service made on first use; ``seal_key`` seals their read models as the CLI's."""

    def __init__(self, ledger: Ledger, catalog: Catalog, *, seal_key: bytes | None) -> None:
        self.ledger, self.catalog, self.seal_key = ledger, catalog, seal_key
        self._open = ExitStack()
        self._agents: AgentService | None = None
        self._costs: CostService | None = None
        self._memory: MemoryService | None = None
        self._routes: RouteService | None = None
        self._retro: RetroService | None = None

    def close(self) -> None:
        self._open.close()

    def agents(self) -> AgentService:
        from kei.app.agents import AgentService

        if self._agents is None:
            self._agents = self._open.enter_context(
                AgentService(self.ledger, seal_key=self.seal_key)
            )
        return self._agents

    def costs(self) -> CostService:
        from kei.app.costs import CostService

        if self._costs is None:
            self._costs = self._open.enter_context(CostService(self.ledger, seal_key=self.seal_key))
        return self._costs

    def memory(self) -> MemoryService:
        from kei.app.memory import MemoryService

        if self._memory is None:
            self._memory = self._open.enter_context(
                MemoryService(self.ledger, seal_key=self.seal_key)
            )
        return self._memory

    def routes(self) -> RouteService:
        from kei.app.routing import RouteService

        if self._routes is None:
            service = RouteService(self.ledger, self.catalog, seal_key=self.seal_key)
            self._routes = self._open.enter_context(service)
        return self._routes

    def skills(self) -> SkillService:
        from kei.app.skills import SkillService

        return SkillService(self.ledger, seal_key=self.seal_key)

    def retro(self) -> RetroService:
        """Retrospectives (read only here: the matrix, which only ingesting uses, is the
        shipped one)."""
        from kei.adapters.files.leaks import shipped_matrix
        from kei.app.retro import RetroService

        if self._retro is None:
            service = RetroService(self.ledger, shipped_matrix(), seal_key=self.seal_key)
            self._retro = self._open.enter_context(service)
        return self._retro
