"""Appending ``budget.threshold.crossed``: exactly once per budget, threshold and period.

:func:`check_budgets` measures every budget in force (``status.measure``) and, for
each, reads its crossings stream ``budget/<N>/<period key>`` (rows checked), asks
``rules.due`` which thresholds the spend has reached beyond the ones recorded, and
appends those at the version read: threshold k at version k. A writer racing another
to append the same crossing loses the store's version check (``ConcurrencyError``,
nothing appended), reads the stream again and appends only what is still missing
(``retry_write``); so no crossing is appended twice and none is skipped, whatever
the number of processes (``docs/events.md``, "Budgets").

:func:`after_costs` is the check every cost write runs (``kei cost record`` and
``amend``, ``kei import claude-code`` and ``kei-ledger`` once per run, ``kei llm chat
--agent``, the MCP ``cost_record`` tool): it never raises, since the cost is already
committed; a failure is logged and returned, and ``kei budget check`` runs it again.
With no budget ever set it costs one indexed read and appends nothing; with budgets,
it reads the costs read model as it stands plus the events after it (``tail.py``)
rather than catching it up and sealing it again.

The period is the one holding the moment of the check, and for a cost write also the
one holding the written event's time (a cost recorded at 23:59:59.999 is measured in
its own day even when the check runs after midnight). Other periods are checked only
when asked (``kei budget check --at``): an import of last year's transcripts does not
announce last year's crossings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from kei.app.budgets.writes import budgets_in_force, has_budgets
from kei.app.ledger.ledger import Ledger, NewEvent
from kei.app.ledger.retrying import retry_write
from kei.domain.budgets.periods import period_window
from kei.domain.budgets.rules import due
from kei.domain.events.budgets import THRESHOLDS, ThresholdCrossed, crossings_stream
from kei.errors import LedgerStateError

if TYPE_CHECKING:
    from kei.app.budgets.status import BudgetStatus

log = logging.getLogger(__name__)
SealKey = bytes | None | Callable[[], bytes | None]


class Crossing(Struct, frozen=True):
    """One crossing appended: its event's name (``STREAM:VERSION``) and payload."""

    event: str
    payload: ThresholdCrossed

    def to_dict(self) -> dict[str, Any]:
        """The crossing in a JSON answer (the CLI's ``--json``, MCP tools)."""
        p = self.payload
        return {
            "event": self.event,
            "budget": f"budgets:{p.budget_version}",
            "scope": p.scope,
            "period": p.period,
            "period_key": p.period_key,
            "threshold_percent": p.threshold_percent,
            "spent_micro_cents": p.spent_micro_cents,
            "limit_micro_cents": p.limit_micro_cents,
            "unpriced_events": p.unpriced_events,
        }


class CheckResult(Struct, frozen=True):
    """What a check did: the budgets it measured, the crossings it appended, and
    ``error``, the one line of a check that could not run (``after_costs`` only)."""

    budgets: int = 0
    crossings: tuple[Crossing, ...] = ()
    error: str | None = None


def check_budgets(
    ledger: Ledger,
    *,
    seal_key: bytes | None = None,
    at_us: int | None = None,
    also_us: Iterable[int] = (),
    quick: bool = False,
) -> CheckResult:
    """Append every crossing due in the periods holding ``at_us`` (None: now) and
    ``also_us``; see the module docstring (``quick``: ``status.measure``'s)."""
    if not has_budgets(ledger):
        return CheckResult()
    from kei.app.budgets.status import measure, now_us  # the read models: SQLAlchemy

    budgets = sorted(budgets_in_force(ledger).values(), key=lambda b: b.version)
    moment = now_us() if at_us is None else at_us
    found: list[Crossing] = []
    seen: set[tuple[int, str]] = set()  # (budget, period key) measured by this check
    for when in dict.fromkeys([moment, *also_us]):  # in order, each moment once
        todo = [b for b in budgets if (b.version, period_window(b.period, when).key) not in seen]
        for measured in measure(ledger, todo, seal_key=seal_key, at_us=when, quick=quick):
            seen.add((measured.budget.version, measured.window.key))
            found += append_due(ledger, measured)
    return CheckResult(len(budgets), tuple(found))


def append_due(ledger: Ledger, m: BudgetStatus) -> list[Crossing]:
    """Append the thresholds the spend ``m`` measured has reached beyond those its
    crossings stream holds; a lost race reads the stream again (``retry_write``)."""
    return retry_write(
        ledger.retry, partial(_append_due, ledger, m), what=f"budget {m.budget.name}",
        left="no crossing appended",
    )  # fmt: skip


def _append_due(ledger: Ledger, m: BudgetStatus) -> list[Crossing]:
    b, key = m.budget, m.window.key
    stream = crossings_stream(b.version, key)
    held = _held(ledger, stream, b.version, key)
    payloads = [
        ThresholdCrossed(
            scope=b.scope,
            period=b.period,
            period_key=key,
            threshold_percent=t,
            spent_micro_cents=m.spent.micro_cents,
            limit_micro_cents=b.limit_micro_cents,
            budget_version=b.version,
            unpriced_events=m.spent.unpriced,
        )
        for t in due(m.spent.micro_cents, b.limit_micro_cents, held)
    ]
    if not payloads:
        return []
    batch = [NewEvent(stream, p, held + i) for i, p in enumerate(payloads)]
    recorded = ledger.append(batch)  # ConcurrencyError: another writer came first
    return [Crossing(f"{e.stream}:{e.version}", p) for e, p in zip(recorded, payloads, strict=True)]


def _held(ledger: Ledger, stream: str, version: int, key: str) -> int:
    """How many thresholds ``stream`` records, refused unless it holds exactly what kei
    appends there (thresholds 50, 80, 100 in order at versions 1, 2, 3, of this budget
    and period): appending after anything else could repeat or skip one."""
    found = []
    for e in ledger.read_stream_checked(stream):
        p = e.payload()
        ok = isinstance(p, ThresholdCrossed) and (p.budget_version, p.period_key) == (version, key)
        found.append(p.threshold_percent if isinstance(p, ThresholdCrossed) and ok else None)
    if tuple(found) != THRESHOLDS[: len(found)]:
        raise LedgerStateError(
            f"{stream} holds {found}, not the thresholds {list(THRESHOLDS)} in order; "
            "no crossing appended to it",
            hint="some other writer appended there; see `kei events tail`",
        )
    return len(found)


def after_costs(
    ledger: Ledger,
    *,
    seal_key: SealKey = None,
    also_us: Iterable[int] = (),
    added: int | None = None,
) -> CheckResult:
    """:func:`check_budgets` after a cost write, which it must never fail: any error is
    logged and returned in ``error`` (``seal_key`` may be a function, called only when
    a budget is set). ``added``: the micro-cents the write added, when known; a write
    that added nothing (0, unpriced, or less) cannot reach a threshold and skips the
    check (and its read-model catch-up)."""
    if added is not None and added <= 0:
        return CheckResult()
    try:
        if not has_budgets(ledger):
            return CheckResult()
        key = seal_key() if callable(seal_key) else seal_key
        return check_budgets(ledger, seal_key=key, also_us=also_us, quick=True)
    except Exception as exc:  # the cost is committed: a failed check must not undo that
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.warning("budgets not checked: %s; run `kei budget check`", reason)
        return CheckResult(error=reason)
