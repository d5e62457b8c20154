"""Recording a provider's checked status callback as ``notify.receipt``, once.

The caller (``NotifyService.record_callback``) finds the candidate notifications by
receipt in the outbox read model; a read model only points, so here each candidate's
stream is read checked and must itself hold a ``notify.delivered`` with that receipt.
A callback repeated (Twilio retries, or anyone replays one it captured: a Twilio
signature carries no time) appends nothing when the stream already holds a receipt
with the same status and code. The append is at the version read, so two receivers
handling one callback at once append it once: the loser re-reads and finds it there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from kei.adapters.notify.callbacks import Recorded
from kei.app.notify.appends import append_guarded
from kei.domain.events.notify import NotifyDelivered, NotifyReceipt, notify_stream
from kei.domain.notify.clip import clip_id
from kei.errors import ConcurrencyError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger

TRIES: Final = 5


def receipt_payload(nid: str, sid: str, status: str, code: str | None) -> NotifyReceipt:
    """The event as it would be appended (hostile values clipped)."""
    return NotifyReceipt(
        notification_id=nid, receipt=clip_id(sid) or "?",
        provider_status=clip_id(status) or "?", provider_code=clip_id(code),
    )  # fmt: skip


def record_receipt_once(
    ledger: Ledger, candidates: Sequence[str], sid: str, status: str, code: str | None
) -> Recorded:
    """Append ``notify.receipt`` to the candidate whose checked stream delivered ``sid``,
    unless it holds the same receipt already."""
    for nid in candidates:
        wanted = receipt_payload(nid, sid, status, code)
        for _ in range(TRIES):
            events = ledger.read_stream_checked(notify_stream(nid))
            payloads = [e.payload() for e in events]
            if not any(isinstance(p, NotifyDelivered) and p.receipt == sid for p in payloads):
                break  # the read model pointed at a stream that never delivered sid
            if wanted in payloads:
                return "repeated"
            try:
                append_guarded(ledger, notify_stream(nid), [wanted], events[-1].version)
            except ConcurrencyError:
                continue  # another writer appended first: decide again from the new end
            return "recorded"
        else:
            raise ConcurrencyError(f"notification {nid[:12]}: the stream kept moving",
                                   hint="the provider retries its callback")  # fmt: skip
    return "unknown"
