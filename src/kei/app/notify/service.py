"""``NotifyService``: what ``kei notify`` does, over one ledger, its channels and rules.

Reads (``list``, ``show``) catch the ``notify_outbox`` read model up (verifying what
it folds) or read a notification's stream checked. The CLI keeps the notify read models
unsealed: a seal costs a digest of the whole table, and ``kei notify run`` catches up
every turn (see docs/notify.md, "Delivery accounting"). Writes decide from checked streams:
``send`` and ``test`` append a request and deliver it at once (``queue`` leaves it to
``kei notify run``), ``retry`` appends ``notify.requeued`` and delivers, and
``record_receipt`` appends a provider's later word. Nothing here prints.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from msgspec import Struct

from kei.app.notify.appends import append_guarded, append_requests
from kei.app.notify.config import NotifyConfig
from kei.app.notify.notifier import Notifier, now_us
from kei.app.notify.receipts import receipt_payload, record_receipt_once
from kei.app.readmodels import ReadModels, ReadModelService
from kei.domain.events.notify import (
    Cause,
    NotifyRequested,
    NotifyRequeued,
    notify_stream,
)
from kei.domain.notify.clip import BODY_MOST, SUBJECT_MOST, clip_id, clip_text
from kei.domain.notify.ids import is_notification_id, notification_id
from kei.domain.notify.message import Severity
from kei.domain.notify.state import STATES, NotificationState
from kei.errors import InputError, LedgerStateError
from kei.projections.notify_activity import NotifyActivity
from kei.projections.notify_outbox import NotifyOutbox

if TYPE_CHECKING:
    import threading

    from kei.adapters.notify.callbacks import Recorded
    from kei.adapters.notify.channel import Channel
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.recorded import RecordedEvent

MIN_PREFIX: Final = 6
TEST_SUBJECT: Final = "kei notify test"
TEST_BODY: Final = "If you can read this, kei can reach this channel."


class Shown(Struct, frozen=True):
    """One notification: its state and every event of its stream."""

    state: NotificationState
    events: list[RecordedEvent]


class NotifyService(ReadModelService):
    """``kei notify`` over ``ledger``; ``channels`` by name, ``config`` from notify.toml."""

    def __init__(
        self,
        ledger: Ledger,
        channels: Mapping[str, Channel],
        config: NotifyConfig,
        *,
        seal_key: bytes | None = None,
        clock: Callable[[], int] = now_us,
        stop: threading.Event | None = None,
    ) -> None:
        self.outbox, self.activity = NotifyOutbox(), NotifyActivity()
        super().__init__(
            ReadModels(ledger, self.outbox, self.activity, name="notify", seal_key=seal_key)
        )
        self.channels, self.config, self.clock = channels, config, clock
        self.notifier = Notifier(ledger, channels, config, clock=clock, stop=stop)

    def close(self) -> None:
        self.notifier.close()
        super().close()

    @property
    def kinds(self) -> dict[str, str]:
        return {name: c.kind for name, c in self.channels.items()}

    # -- writes ------------------------------------------------------------------------

    def send(
        self,
        channel: str,
        subject: str,
        body: str = "",
        *,
        severity: Severity = "info",
        key: str | None = None,
        queue: bool = False,
        cause: Cause = "send",
    ) -> NotificationState:
        """Request one notification on ``channel`` and, unless ``queue``, deliver it now.
        ``key`` names it (the same key twice: one notification, the second is refused)."""
        found = self._channel(channel)
        if not subject.strip():
            raise InputError("a notification needs a subject", hint="pass --subject TEXT")
        name = key if key is not None else str(uuid.uuid4())
        if clip_id(name) != name:
            raise InputError(f"--key {name[:40]!r} must be 1-256 characters without control "
                             "characters")  # fmt: skip
        nid = notification_id(cause, name)
        req = NotifyRequested(
            notification_id=nid, cause=cause, channel=channel, channel_kind=found.kind,
            severity=severity, subject=clip_text(subject, SUBJECT_MOST),
            body_text=clip_text(body, BODY_MOST),
        )  # fmt: skip
        if not append_requests(self.ledger, [req]):
            raise LedgerStateError(
                f"notification {nid[:12]} (key {name!r}) was requested before",
                hint=f"see `kei notify show {nid[:12]}`",
            )
        if not queue:
            self.notifier.work([nid])
        return self._state(nid)

    def test(self, channel: str) -> NotificationState:
        """Send a test message on ``channel`` now, recorded like any other."""
        return self.send(channel, TEST_SUBJECT, TEST_BODY, cause="test")

    def retry(self, ref: str, reason: str = "", *, queue: bool = False) -> NotificationState:
        """Make an abandoned, suppressed or waiting notification due again, with a fresh
        budget of attempts, and (unless ``queue``) deliver it now."""
        nid = self.resolve(ref)
        state = self._state(nid)
        if state.state in ("delivered", "pending"):
            raise LedgerStateError(f"notification {nid[:12]} is {state.state}: nothing to retry")
        if state.claim is not None and self.clock() < state.claim.lease_until_us:
            raise LedgerStateError(
                f"notification {nid[:12]} is being sent by {state.claim.notifier}",
                hint="wait for its outcome, or for its lease to end",
            )
        self._channel(state.request.channel)
        requeued = NotifyRequeued(notification_id=nid, reason=clip_text(reason))
        append_guarded(self.ledger, notify_stream(nid), [requeued], state.version)
        if not queue:
            self.notifier.work([nid])
        return self._state(nid)

    def record_receipt(
        self, ref: str, receipt: str, status: str, code: str | None = None
    ) -> RecordedEvent:
        """Append a provider's later word (a checked Twilio status callback)."""
        nid = self.resolve(ref)
        payload = receipt_payload(nid, receipt, status, code)
        return append_guarded(self.ledger, notify_stream(nid), [payload], None)[0]

    def record_callback(self, channel: str, sid: str, status: str, code: str | None) -> Recorded:
        """A checked status callback about the message ``sid`` sent on ``channel``:
        ``recorded`` (``notify.receipt`` appended), ``repeated`` (that receipt is in the
        stream already: nothing appended) or ``unknown`` (nothing on ``channel`` was
        delivered as ``sid``: nothing appended)."""
        self.models.catch_up([self.outbox.name])
        t = self.outbox.table
        query = t.select().where(t.c.channel == channel, t.c.receipt == sid).limit(2)
        found = [str(r["id"]) for r in self.models.rows(query)]
        return record_receipt_once(self.ledger, found, sid, status, code)

    # -- reads -------------------------------------------------------------------------

    def listing(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Notifications newest first, from the caught-up outbox."""
        if state is not None and state not in STATES:
            raise InputError(f"unknown state {state!r}", hint=f"one of {', '.join(STATES)}")
        self.models.catch_up([self.outbox.name])
        t = self.outbox.table
        query = t.select().order_by(t.c.requested_position.desc()).limit(limit)
        if state is not None:
            query = query.where(t.c.state == state)
        return self.models.rows(query)

    def show(self, ref: str) -> Shown:
        """One notification, from its checked stream."""
        nid = self.resolve(ref)
        events = self.ledger.read_stream_checked(notify_stream(nid))
        return Shown(self._state(nid, events), events)

    def resolve(self, ref: str) -> str:
        """A whole id, or the one notification whose id starts with ``ref``."""
        if is_notification_id(ref):
            if self.ledger.store.stream_version(notify_stream(ref)) == 0:
                raise InputError(f"no notification {ref[:12]}", hint="see `kei notify list`")
            return ref
        if len(ref) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in ref):
            raise InputError(f"{ref[:70]!r} is not a notification id or a prefix of at least "
                             f"{MIN_PREFIX} hex digits", hint="see `kei notify list`")  # fmt: skip
        self.models.catch_up([self.outbox.name])
        t = self.outbox.table
        rows = self.models.rows(t.select().where(t.c.id.like(ref + "%")).limit(2))
        if len(rows) != 1:
            what = "no notification" if not rows else "more than one notification"
            raise InputError(f"{what} starts with {ref}", hint="see `kei notify list`")
        return str(rows[0]["id"])

    def _state(self, nid: str, events: list[RecordedEvent] | None = None) -> NotificationState:
        if events is None:
            found = self.notifier.state(nid)
        else:
            from kei.domain.notify.state import fold_stream

            found = fold_stream([(e.payload(), e.version, e.timestamp_us) for e in events])
        if found is None:
            raise InputError(f"no notification {nid[:12]}", hint="see `kei notify list`")
        return found

    def _channel(self, name: str) -> Channel:
        found = self.channels.get(name)
        if found is None:
            have = ", ".join(sorted(self.channels)) or "none"
            raise InputError(f"no channel named {name!r} (configured: {have})",
                             hint="see `kei notify channels` and docs/notify.md")  # fmt: skip
        return found
