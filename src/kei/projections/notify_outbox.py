"""``notify_outbox``: one row per notification, the notifier's work list.

Folded with the domain's own fold (``kei.domain.notify.state``) from the ``notify.*``
events, so a row says exactly what the notification's stream says. The notifier reads
it only to find candidates (``due``); before it appends anything it folds the stream's
checked rows again and decides from those. ``kei notify list`` reads it as it is.

Not among the default read models (``projections/registry.py``): it belongs to
``kei notify``, whose session catches it up (``kei.app.notify``).

Table ``notify_outbox_notifications`` (times in integer microseconds), primary key
``id``: ``channel``, ``channel_kind``, ``severity``, ``cause``, ``rule_id``,
``subject``, ``state``, ``attempts``, ``budget_from``, ``claim_attempt``,
``claim_notifier``, ``lease_until_us`` (the open claim, if any), ``last_in_doubt``,
``not_before_us``, ``not_after_us``, ``last_class``, ``last_error``, ``receipt``,
``provider_status``, ``end_reason``, ``possible_duplicates``, ``requested_us``,
``requested_position``, ``updated_us``, ``version`` (of the stream's last event).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Integer, MetaData, String, Table, and_, or_, select

from kei.domain.events.notify import NOTIFY_STREAM_PREFIX, NOTIFY_TYPES, NotifyRequested
from kei.domain.log.recorded import RecordedEvent
from kei.domain.notify.state import Claim, NotificationState, fold, start
from kei.projections.base import KEY, MAYBE, NEEDED, deferred_index, table_columns
from kei.projections.notify_rows import KeyedRows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

NAME: Final = "notify_outbox"
COLUMNS: Final = (
    "id", "channel", "channel_kind", "severity", "cause", "rule_id", "subject", "state",
    "attempts", "budget_from", "claim_attempt", "claim_notifier", "lease_until_us",
    "last_in_doubt", "not_before_us", "not_after_us", "last_class", "last_error", "receipt",
    "provider_status", "end_reason", "possible_duplicates", "requested_us",
    "requested_position", "updated_us", "version",
)  # fmt: skip
_TEXT: Final = frozenset({"id", "channel", "channel_kind", "severity", "cause", "rule_id",
                          "subject", "state", "claim_notifier", "last_class", "last_error",
                          "receipt", "provider_status", "end_reason"})  # fmt: skip
_REQUIRED: Final = frozenset({"id", "channel", "channel_kind", "severity", "cause", "subject",
                              "state", "attempts", "budget_from", "last_in_doubt",
                              "possible_duplicates", "requested_us", "requested_position",
                              "updated_us", "version"})  # fmt: skip
ERROR_KEPT: Final = 500  # characters of the last error a row keeps (the log has it all)


class NotifyOutbox(KeyedRows):
    """The outbox read model; see the module docstring."""

    event_types = NOTIFY_TYPES

    def __init__(self, name: str = NAME) -> None:
        super().__init__(name)

    def main_table(self, metadata: MetaData) -> Table:
        t = f"{self.name}_notifications"
        spec = [(c, String if c in _TEXT else (Integer if c == "last_in_doubt" else BigInteger),
                 KEY if c == "id" else NEEDED if c in _REQUIRED else MAYBE) for c in COLUMNS]  # fmt: skip
        index = deferred_index(f"{t}_state_idx", "state", "not_before_us")
        return Table(t, metadata, *table_columns(spec), index)

    def apply_page(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        ids = sorted({e.stream.removeprefix(NOTIFY_STREAM_PREFIX) for e in events})
        stored = self.stored(conn, ids)
        states: dict[str, tuple[NotificationState, int]] = {
            i: (to_state(r), r[COLUMNS.index("requested_position")]) for i, r in stored.items()
        }
        for e in events:
            nid = e.stream.removeprefix(NOTIFY_STREAM_PREFIX)
            payload = e.payload()
            if isinstance(payload, NotifyRequested):
                if nid not in states and e.version == 1 and payload.notification_id == nid:
                    states[nid] = (start(payload, e.version, e.timestamp_us), e.position)
            elif nid in states:
                s, at = states[nid]
                states[nid] = (fold(s, payload, e.version, e.timestamp_us), at)
        rows = [to_row(s, at) for s, at in (states[i] for i in sorted(states))]
        self.replace(conn, stored, rows)

    # -- reads ------------------------------------------------------------------------

    def due(self, conn: Connection, now_us: int, limit: int) -> list[dict[str, Any]]:
        """Rows that may need work now, oldest request first: pending ones, retries
        whose wait is over and every open claim (the caller judges leases)."""
        t = self.table
        query = (
            select(t)
            .where(
                or_(
                    t.c.state.in_(("pending", "claimed")),
                    and_(t.c.state == "retrying", t.c.not_before_us <= now_us),
                )
            )
            .order_by(t.c.requested_position)
            .limit(limit)
        )
        return [dict(r._mapping) for r in conn.execute(query)]

    def next_due_us(self, conn: Connection) -> int | None:
        """The earliest retry or lease end still ahead (None: nothing waits)."""
        t = self.table
        waits = conn.execute(
            select(t.c.not_before_us, t.c.lease_until_us).where(
                t.c.state.in_(("retrying", "claimed"))
            )
        ).all()
        times = [v for row in waits for v in row if v is not None]
        return min(times, default=None)


def to_row(s: NotificationState, requested_position: int) -> tuple[Any, ...]:
    """A state as a row, in ``COLUMNS`` order."""
    r, c = s.request, s.claim
    return (
        r.notification_id, r.channel, r.channel_kind, r.severity, r.cause, r.rule_id, r.subject,
        s.state, s.attempts, s.budget_from, c and c.attempt, c and c.notifier,
        c and c.lease_until_us, int(s.last_in_doubt), s.not_before_us, r.not_after_us,
        s.last_class, s.last_error[:ERROR_KEPT], s.receipt, s.provider_status, s.end_reason,
        s.possible_duplicates, s.requested_us, requested_position, s.updated_us, s.version,
    )  # fmt: skip


def to_state(row: Sequence[Any]) -> NotificationState:
    """A row back as the state the fold continues from (the request without its body:
    the fold never reads it)."""
    v = dict(zip(COLUMNS, row, strict=True))
    request = NotifyRequested(
        notification_id=v["id"], cause=v["cause"], rule_id=v["rule_id"], channel=v["channel"],
        channel_kind=v["channel_kind"], severity=v["severity"], subject=v["subject"],
        not_after_us=v["not_after_us"],
    )  # fmt: skip
    claim = None
    if v["claim_attempt"] is not None:
        claim = Claim(attempt=v["claim_attempt"], notifier=v["claim_notifier"],
                      lease_until_us=v["lease_until_us"])  # fmt: skip
    return NotificationState(
        request=request, requested_us=v["requested_us"], version=v["version"],
        state=v["state"], attempts=v["attempts"], budget_from=v["budget_from"], claim=claim,
        last_in_doubt=bool(v["last_in_doubt"]), not_before_us=v["not_before_us"],
        last_class=v["last_class"], last_error=v["last_error"] or "", receipt=v["receipt"],
        provider_status=v["provider_status"], end_reason=v["end_reason"],
        possible_duplicates=v["possible_duplicates"], updated_us=v["updated_us"],
    )  # fmt: skip
