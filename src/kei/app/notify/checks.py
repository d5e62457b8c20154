"""The two checks rules can watch besides events: ``verify-chain`` and stalled agents.

- ``check:verify-chain``: every ``every_s`` seconds (and when ``kei notify run``
  starts) the log is verified (``Ledger.verify``; ``quick = true``: links and hashes
  only). Each of the first ``MOST_FINDINGS`` findings becomes a request whose id names
  the rule, the finding's kind and its position, so a finding still there at the next
  run is not notified again, and a new one is.
- ``check:stalled-agent``: a running agent whose stream has had no event for
  ``idle_s`` seconds (``notify_activity`` read model). The id names the rule and the
  agent's last event (``stream:version``): one notification per stall; an agent that
  moves and stalls again is notified again. Only agents that went quiet after the
  follower began watching count, so a first run does not page about last year.

Both append through ``appends.append_requests``: the same exactly-once rule as events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from kei.app.json_form import rfc3339
from kei.domain.events.notify import NotifyRequested
from kei.domain.notify.requests import Trigger, request
from kei.domain.notify.rules import CHECK_STALLED, CHECK_VERIFY, Rule
from kei.projections.notify_activity import NotifyActivity

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.app.readmodels import ReadModels

log = logging.getLogger(__name__)

MOST_FINDINGS: Final = 10


class Checks:
    """The check rules among ``rules`` whose channels ``kinds`` knows."""

    def __init__(
        self,
        ledger: Ledger,
        models: ReadModels,
        activity: NotifyActivity,
        rules: Sequence[Rule],
        kinds: Mapping[str, str],
    ) -> None:
        self.ledger, self.models, self.activity, self.kinds = ledger, models, activity, kinds
        self.verify = [
            r for r in rules if r.check == CHECK_VERIFY and r.enabled and r.channel in kinds
        ]
        self.stalled = [
            r for r in rules if r.check == CHECK_STALLED and r.enabled and r.channel in kinds
        ]
        self._next: dict[str, int] = {}

    @property
    def watches_agents(self) -> bool:
        return bool(self.stalled)

    def requests(self, now_us: int, watch_from_us: int) -> list[NotifyRequested]:
        """The requests the checks due at ``now_us`` make."""
        out: list[NotifyRequested] = []
        due = [r for r in self.verify if self._next.get(r.id, 0) <= now_us]
        if due:
            out += self._verify(due, now_us)
        due = [r for r in self.stalled if self._next.get(r.id, 0) <= now_us]
        if due:
            out += self._stalled(due, now_us, watch_from_us)
        return out

    def next_us(self) -> int | None:
        """When the next check is due (None: no checks)."""
        return min(self._next.values(), default=None)

    def _verify(self, rules: Sequence[Rule], now_us: int) -> list[NotifyRequested]:
        out = []
        for quick in sorted({r.quick for r in rules}):
            report = self.ledger.verify(quick=quick)
            total = len(report.findings) + report.findings_omitted
            for rule in (r for r in rules if r.quick == quick):
                self._next[rule.id] = now_us + rule.every_s * 1_000_000
                for f in report.findings[:MOST_FINDINGS]:
                    values = {"kind": f.kind.value, "position": f.position, "detail": f.detail,
                              "findings": total, "time": rfc3339(now_us) or ""}  # fmt: skip
                    key = (rule.id, f.kind.value, "log" if f.position is None else f.position)
                    trigger = Trigger(cause="verify", key=key, ts_us=now_us, values=values)
                    out.append(request(rule, trigger, self.kinds[rule.channel]))
            if total:
                log.warning("verify-chain found %d problem(s)", total)
        return out

    def _stalled(
        self, rules: Sequence[Rule], now_us: int, watch_from_us: int
    ) -> list[NotifyRequested]:
        self.models.catch_up([self.activity.name])
        out = []
        for rule in rules:
            self._next[rule.id] = now_us + min(60, max(1, rule.idle_s // 4)) * 1_000_000
            with self.models.connect() as conn:
                rows = self.activity.idle(conn, now_us - rule.idle_s * 1_000_000, watch_from_us)
            for row in rows:
                values = {
                    "agent_id": row["agent_id"], "stream": row["stream"],
                    "version": row["last_version"], "last_type": row["last_type"],
                    "idle_s": (now_us - row["last_us"]) // 1_000_000,
                    "last_time": rfc3339(row["last_us"]) or "", "time": rfc3339(now_us) or "",
                }  # fmt: skip
                trigger = Trigger(
                    cause="stalled", key=(rule.id, row["stream"], row["last_version"]),
                    ts_us=now_us, values=values, event_type=row["last_type"],
                    stream=row["stream"], version=row["last_version"],
                )  # fmt: skip
                out.append(request(rule, trigger, self.kinds[rule.channel]))
        return out
