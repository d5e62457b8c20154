"""The skill commands: record an invocation, and read upstream's Phase-D metrics.

``record`` appends one ``skill.invoked`` event to stream ``skill/<NAME>`` without an
expected version: invocations are independent facts. ``report`` and ``last_used``
catch the ``skills`` read model up (verifying the chain it folds) and fold its rows
with the domain maths (``kei.domain.agents.skills``). Nothing here prints.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.agents import skills as sk
from kei.domain.events import SkillInvoked
from kei.domain.log.recorded import RecordedEvent

if TYPE_CHECKING:  # the reads load the read model (and SQLAlchemy); ``record`` does not
    from kei.app.readmodels import ReadModels
    from kei.projections.skills import Skills

__all__ = ["SkillService"]


class SkillService:
    """The skill commands over one ledger and its ``skills`` read model."""

    def __init__(self, ledger: Ledger, *, seal_key: bytes | None = None) -> None:
        self.ledger = ledger
        self._seal_key = seal_key

    def record(self, invocation: SkillInvoked) -> RecordedEvent:
        """Append ``invocation`` (checked by the caller: ``sk.validate_invocation``)."""
        stream = sk.skill_stream(invocation.skill_name)
        return self.ledger.append([NewEvent(stream, invocation)])[0]

    def report(self, since_us: int) -> list[sk.SkillMetrics]:
        """Per-skill metrics of the invocations at or after ``since_us``."""
        from kei.projections.skills import Skills

        skills = Skills()
        with self._caught_up(skills) as models, models.connect() as conn:
            invocations = skills.invocations(conn, since_us=since_us)
        return sk.aggregate(invocations, since_us=since_us)

    def last_used_us(self, name: str) -> int | None:
        """When ``name`` was last invoked (None: never)."""
        from kei.projections.skills import Skills

        skills = Skills()
        with self._caught_up(skills) as models, models.connect() as conn:
            return skills.last_used_us(conn, name)

    def _caught_up(self, skills: Skills) -> AbstractContextManager[ReadModels]:
        from kei.app.readmodels import caught_up

        where = self.ledger.store.url  # the URL without its password
        return caught_up(self.ledger, skills, name=f"skills in {where}", seal_key=self._seal_key)
