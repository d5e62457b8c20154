"""``kei notify run``: the rule follower, the checks and the notifier, in one loop.

Each turn: the follower requests what the rules match in the events since its cursor,
the checks that are due request what they find, the outbox read model catches up and
the notifier works through what is due. Then the loop waits for the store to say
something was appended (PostgreSQL's NOTIFY), for the next retry or lease end, or for
``poll_s``, whichever comes first. ``once`` runs turns until the follower has read to
the end of the log, sends what is due and returns.

What a turn requests is sent in the same turn, straight from the ids it appended (the
notifier reads each stream checked); the outbox adds what is due from before (retries,
claims in doubt, ``--queue``d sends). Errors inside a turn do not end the loop: a break
in the chain stops the follower and the outbox at the break, logged once, while the
checks go on and what they request is still sent: a ``verify-chain`` finding about the
break is exactly what must get out. ``stop`` (set by SIGTERM or
SIGINT in the CLI) ends the loop after the send in flight; see ``notifier.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from msgspec import Struct

from kei.app.notify.appends import append_requests
from kei.app.notify.checks import Checks
from kei.app.notify.follower import RuleFollower
from kei.app.notify.identity import claim_gone
from kei.errors import KeiError

if TYPE_CHECKING:
    from kei.adapters.store.base import Waiter
    from kei.app.notify.service import NotifyService

log = logging.getLogger(__name__)
DUE_PER_TURN: Final = 1000
MOST_FRESH: Final = 10_000
T = TypeVar("T")


class RunReport(Struct):
    """What a run did (``kei notify run`` prints it when it ends)."""

    requested: int = 0
    sent: int = 0
    turns: int = 0
    errors: int = 0


class Runner:
    """The loop over ``service``; ``stop`` ends it."""

    def __init__(self, service: NotifyService, stop: threading.Event | None = None) -> None:
        self.service = service
        self.stop = stop or service.notifier.stop
        service.notifier.stop = self.stop
        rules, kinds = service.config.rules, service.kinds
        self.follower = RuleFollower(service.ledger, service.models, rules, kinds)
        self.checks = Checks(service.ledger, service.models, service.activity, rules, kinds)
        self.report = RunReport()
        self._said: set[str] = set()
        self._fresh: dict[str, None] = {}  # asked for while the outbox could not be read

    def run(self, *, once: bool = False, from_start: bool = False) -> RunReport:
        clock = self.service.clock
        self.follower.open(clock(), from_start=from_start)
        waiter = self.service.ledger.store.open_waiter()
        try:
            while not self.stop.is_set():
                more = self.turn()
                if once and not more:
                    break
                if not more:
                    self._wait(waiter)
        finally:
            waiter.close()
        return self.report

    def turn(self) -> bool:
        """One turn; True when there is more to do now (more of the log to read, more
        due than one turn takes)."""
        r, svc = self.report, self.service
        r.turns += 1
        new: list[str] = []
        if self.follower.rules:
            new += self._guarded("rule follower", self.follower.step) or []
        more = self.follower.more
        if self.checks.verify or self.checks.stalled:
            found = self._guarded("checks", lambda: self.checks.requests(
                svc.clock(), self.follower.started_us)) or []  # fmt: skip
            new += self._guarded("checks", lambda: append_requests(svc.ledger, found)) or []
        r.requested += len(new)
        due = self._guarded("outbox", self._due)
        if due is None:  # the outbox is stuck (a break in the chain): keep what we asked for
            self._fresh.update(dict.fromkeys(new))
            while len(self._fresh) > MOST_FRESH:
                self._fresh.pop(next(iter(self._fresh)))
            ids = list(self._fresh)
        else:
            self._fresh.clear()
            ids = list(dict.fromkeys([*new, *due]))
        if ids and not self.stop.is_set():
            r.sent += self._guarded("notifier", lambda: svc.notifier.work(ids)) or 0
        return more or len(due or ()) >= DUE_PER_TURN

    def _due(self) -> list[str]:
        svc = self.service
        svc.models.catch_up([svc.outbox.name])
        now = svc.clock()
        with svc.models.connect() as conn:
            rows = svc.outbox.due(conn, now, DUE_PER_TURN)
        return [
            r["id"] for r in rows
            if r["state"] != "claimed" or r["lease_until_us"] <= now
            or claim_gone(r["claim_notifier"])
        ]  # fmt: skip

    def _guarded(self, what: str, work: Callable[[], T]) -> T | None:
        """``work()``; a kei error is logged (once per message) and counted, not raised."""
        try:
            return work()
        except KeiError as exc:
            self.report.errors += 1
            line = f"{what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            if line not in self._said:
                self._said.add(line)
                log.error("%s", line)
            return None

    def _wait(self, waiter: Waiter) -> None:
        """Until something may have been appended, the next thing is due, or ``poll_s``."""
        svc = self.service
        timeout = svc.config.settings.poll_s
        wakes = [w for w in (self._next_due(), self.checks.next_us()) if w is not None]
        if wakes:
            timeout = max(0.0, min(timeout, (min(wakes) - svc.clock()) / 1e6))
        if timeout <= 0:
            return
        started = svc.clock()
        if waiter.wait(timeout):
            return
        left = timeout - (svc.clock() - started) / 1e6
        if left > 0:
            self.stop.wait(left)

    def _next_due(self) -> int | None:
        svc = self.service
        try:
            with svc.models.connect() as conn:
                return svc.outbox.next_due_us(conn)
        except KeiError:
            return None
