"""A budget check without catching the read models up: their sums plus the log after them.

The check every cost write runs (``check.after_costs``) used to catch the ``costs``
read model up first: fold the one new event, then re-seal the read model, which hashes
all of its tables (``adapters/readmodels/seal.py``), about 0.4 s a write on a small
ledger. Here the read model is read as it stands, at the position its state row names,
and the few events after that position are folded in memory, exactly as
``projections/costs.py`` folds them: a new cost is a ``current`` row dated by its
call time; an amendment supersedes its target (first one wins), inheriting its time,
session and project; an amendment of an unknown or superseded target counts for
nothing. :meth:`Tail.spend` is then the read model's sum, plus the new current rows,
minus the rows of the read model the tail superseded: the same answer as a catch-up
(``tests/budgets/test_budget_tail.py`` checks it over random cost histories).

What is trusted: the state row must be of this code's version and name an event the
log holds (its position, seq and hash), and the events after it are read through the
follower that checks each one's link and hash, as a catch-up reads them. The read
model's seal is not recomputed here (that is the cost this avoids): the reports,
``kei budget status`` and ``kei budget check`` still check it. :func:`read_tail` says
None, and the caller catches up as before, when the read model is missing, of another
version, off the log, more than :data:`MOST_EVENTS` behind, or (for a ``tree:``
budget) when the ``agents`` read model stands elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from kei.app import cost_reads
from kei.app.budgets.spend import Spend, spend_where, tree_members
from kei.domain.budgets.periods import Window
from kei.domain.budgets.scopes import Scope
from kei.domain.events import AgentForked, CostAmended, CostRecorded
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.verify import Link
from kei.projections import names

if TYPE_CHECKING:
    from kei.adapters.store.base import EventStore
    from kei.app.ledger.ledger import Ledger

MOST_EVENTS: Final = 5_000  # further behind, a catch-up (which also moves it forward) pays
_TYPES: Final = frozenset({"cost.recorded", "cost.amended", "agent.forked"})
_ROW: Final = (
    f"SELECT agent_id, micro_cents, unpriced, call_us, session, project, speed_unpriced, state "
    f"FROM {names.COSTS_TABLE} WHERE stream = ? AND version = ?"
)


@dataclass
class Row:
    """What a budget reads of one cost row (``projections/costs.py``'s columns)."""

    agent_id: str
    micro_cents: int
    unpriced: int
    call_us: int
    session: str | None
    project: str | None
    speed_unpriced: int = 0
    state: str = "current"


@dataclass
class Tail:
    """The cost events after the read model's position, folded; see the module."""

    store: EventStore
    rows: list[Row] = field(default_factory=list)  # new rows (current, superseded, ignored)
    superseded: list[Row] = field(default_factory=list)  # the read model's, now superseded
    forks: list[tuple[str, str | None]] = field(default_factory=list)  # (agent, parent)

    def spend(self, scope: Scope, window: Window, at_us: int, stored: Spend) -> Spend:
        """``stored`` (the read model's sum for the scope) with the tail folded in."""
        extra: set[str] = set()
        members: set[str] | None = None
        if scope.kind == "tree":
            members = tree_members(self.store, scope.value)
            known = set(members)
            for agent, parent in self.forks:  # in log order: a parent comes first
                if parent in members or agent == scope.value:  # the root may be new too
                    members.add(agent)
            extra = members - known
        total = [stored.micro_cents, stored.events, stored.unpriced, stored.so_far,
                 stored.speed_unpriced]  # fmt: skip
        if extra:  # the read model's costs of agents the tail put in the tree
            _add(total, _stored_of(self.store, extra, window, at_us), 1)
        for sign, rows in ((1, [r for r in self.rows if r.state == "current"]),
                           (-1, self.superseded)):  # fmt: skip
            for r in rows:
                if _counts(r, scope, members, window):
                    at = r.micro_cents if r.call_us <= at_us else 0
                    _add(total, Spend(r.micro_cents, 1, r.unpriced, at, r.speed_unpriced), sign)
        return Spend(*total)


def read_tail(ledger: Ledger, *, tree: bool, most: int = MOST_EVENTS) -> Tail | None:
    """The costs after the read model's position (see the module), or None: catch up."""
    store = ledger.store
    states = _states(store)
    costs = states.get(names.COSTS)
    if costs is None or costs[0] != names.COSTS_VERSION:
        return None
    if tree and states.get(names.AGENTS) != (names.AGENTS_VERSION, *costs[1:]):
        return None
    _, position, seq, hash_ = costs
    if store.max_position() - position > most:
        return None
    if position and not cost_reads.holds(store, position, {(seq, hash_)}):
        return None
    from kei.adapters.store.follow import LogFollower

    link = None if seq is None else Link(position, seq, hash_)
    follower = LogFollower(store, link, position=position)
    tail = Tail(store)
    made: dict[tuple[str, int], Row] = {}
    try:
        for page in follower.pages():
            for record in page:
                if record.type in _TYPES:
                    _fold(tail, made, RecordedEvent.from_record(record))
    except Exception:  # an event the read model would skip or refuse: let it decide
        return None
    return None if follower.broken is not None else tail


def _fold(tail: Tail, made: dict[tuple[str, int], Row], event: RecordedEvent) -> None:
    p = event.payload()
    if isinstance(p, AgentForked):
        tail.forks.append((p.agent_id, p.parent_agent_id))
        return
    if not isinstance(p, CostRecorded | CostAmended):
        raise TypeError(f"{event.type} at position {event.position} is not a cost event")
    origin = p.origin
    at = event.timestamp_us
    if origin is not None and origin.occurred_at_us is not None:
        at = origin.occurred_at_us
    where = (p.session, p.cwd) if isinstance(p, CostRecorded) else (None, None)
    row = Row(p.agent_id, p.micro_cents, int(p.unpriced), at, *where, int(p.speed_unpriced))
    if isinstance(p, CostAmended):
        key = (p.supersedes_stream, p.supersedes_version)
        target = made.get(key) or _stored_row(tail, made, key)
        if target is None or target.state != "current":
            row.state = "ignored"
        else:
            row.call_us, row.session, row.project = target.call_us, target.session, target.project
            target.state = "superseded"
    made[(event.stream, event.version)] = row
    tail.rows.append(row)


def _stored_row(tail: Tail, made: dict[tuple[str, int], Row], key: tuple[str, int]) -> Row | None:
    """The read model's row ``key`` (kept in ``made``, so a second amendment sees it
    superseded), marked as one the tail supersedes if it was current."""
    found = tail.store.select(_ROW, list(key))
    if not found:
        return None
    agent, micro, unpriced, call_us, session, project, speed, state = found[0]
    row = Row(agent, int(micro), int(unpriced), int(call_us), session, project, int(speed), state)
    made[key] = row
    if state == "current":
        tail.superseded.append(row)  # still current now: the amendment will supersede it
    return row


def _states(store: EventStore) -> dict[str, tuple[int, int, int | None, bytes | None]]:
    sql = "SELECT name, version, position, seq, hash FROM kei_projections WHERE name IN (?, ?)"
    try:
        rows = store.select(sql, [names.COSTS, names.AGENTS])
    except Exception:  # no state table yet: the engine makes it
        return {}
    return {
        n: (int(v), int(p), None if s is None else int(s), None if h is None else bytes(h))
        for n, v, p, s, h in rows
    }


def _counts(r: Row, scope: Scope, members: set[str] | None, window: Window) -> bool:
    if window.start_us is not None and r.call_us < window.start_us:
        return False
    if window.end_us is not None and r.call_us >= window.end_us:
        return False
    if scope.kind == "session":
        return r.session == scope.value
    if scope.kind == "project":
        return r.project == scope.value
    return members is None or r.agent_id in members


def _stored_of(store: EventStore, agents: set[str], window: Window, at_us: int) -> Spend:
    marks = ",".join("?" * len(agents))
    return spend_where(store, f" AND agent_id IN ({marks})", sorted(agents), window, at_us)


def _add(total: list[int], s: Spend, sign: int) -> None:
    for i, value in enumerate((s.micro_cents, s.events, s.unpriced, s.so_far, s.speed_unpriced)):
        total[i] += sign * value
