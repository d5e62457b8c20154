"""Appending notification events: requests once, outcomes never lost to a leak rule.

- ``append_requests``: each request at version 0 of its stream. Streams that already
  exist are skipped (one query for the batch); the rest go in one batch, and if another
  follower won a race on one of them, one at a time, each clash meaning "already
  requested". Nothing is requested twice: the log refuses the second version 0.
- A request or an outcome whose free text matches a leak ``block`` rule would be
  refused whole, and a refused outcome would leave its claim in doubt. So, as
  ``mcp.tool.called`` does, it is appended again with the text withheld
  (``WITHHELD``): the event lands, the secret does not. Substitute rules redact in
  place (the ledger's leak guard) and need nothing here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from msgspec.structs import replace

from kei.app.ledger.appending import NewEvent
from kei.domain.events.notify import NotifyFailed, NotifyRequested, notify_stream
from kei.domain.events.payload import Payload
from kei.errors import ConcurrencyError, LeakBlockedError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.recorded import RecordedEvent

log = logging.getLogger(__name__)

WITHHELD: Final = "text withheld: it matched a leak-matrix block rule"


def append_requests(ledger: Ledger, requests: Sequence[NotifyRequested]) -> list[str]:
    """Append the requests whose streams do not exist yet; the ids of those that landed."""
    if not requests:
        return []
    unique = {r.notification_id: r for r in requests}
    existing = ledger.store.stream_versions([notify_stream(i) for i in unique])
    fresh = [r for i, r in unique.items() if existing.get(notify_stream(i), 0) == 0]
    if not fresh:
        return []
    try:
        ledger.append([NewEvent(notify_stream(r.notification_id), r, 0) for r in fresh])
        return [r.notification_id for r in fresh]
    except (ConcurrencyError, LeakBlockedError):
        pass  # another follower got one first, or one holds a secret: one at a time
    return [r.notification_id for r in fresh if _one_request(ledger, r)]


def _one_request(ledger: Ledger, r: NotifyRequested) -> bool:
    stream = notify_stream(r.notification_id)
    for payload in (r, replace(r, subject=WITHHELD, body_text="")):
        try:
            ledger.append([NewEvent(stream, payload, 0)])
            return True
        except ConcurrencyError:
            return False  # requested already
        except LeakBlockedError:
            log.warning("notification %s: subject or body withheld (leak rule)", r.notification_id)
    return False


def append_guarded(
    ledger: Ledger, stream: str, payloads: Sequence[Payload], expected: int | None
) -> list[RecordedEvent]:
    """Append ``payloads`` to ``stream`` in one batch (at ``expected`` when given); on a
    leak block, again with every failure's error text withheld."""
    batch = [NewEvent(stream, p, None if expected is None else expected + i)
             for i, p in enumerate(payloads)]  # fmt: skip
    try:
        return ledger.append(batch)
    except LeakBlockedError:
        log.warning("%s: an outcome's text withheld (leak rule)", stream)
    cleaned = [_withheld(p) for p in payloads]
    return ledger.append([NewEvent(e.stream, p, e.expected_version)
                          for e, p in zip(batch, cleaned, strict=True)])  # fmt: skip


def append_outcomes(ledger: Ledger, outcomes: Sequence[tuple[str, Sequence[Payload]]]) -> None:
    """The outcomes of several sends, ``(stream, payloads)`` each, in one batch at the
    streams' ends; on a leak block, stream by stream (``append_guarded``)."""
    batch = [NewEvent(stream, p) for stream, payloads in outcomes for p in payloads]
    try:
        ledger.append(batch)
        return
    except LeakBlockedError:
        pass
    for stream, payloads in outcomes:
        append_guarded(ledger, stream, payloads, None)


def _withheld(p: Payload) -> Payload:
    if isinstance(p, NotifyFailed):
        return replace(p, error=WITHHELD, retry_after_raw=None, provider_code=None)
    return p
