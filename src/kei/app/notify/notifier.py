"""The notifier: claim, send, record, for every notification that is due.

For each candidate (from the ``notify_outbox`` read model, or named by the caller) it
reads the notification's stream *checked* (``Ledger.read_stream_checked``: hashes,
signatures, versions), folds it and asks the domain what to do
(``kei.domain.notify.policy.decide``). A claim is ``notify.attempted`` appended at the
stream's current version: if another notifier appended first, the log refuses it and
this one moves on, so two notifiers never both send one attempt.

A claim is made only for a send that starts at once. A channel without a rate limit
whose in-doubt policy is ``retry`` gets up to ``senders`` claims in one batch and as
many sends at the same time (a pool of threads: only ``Channel.send`` runs there; the
ledger is used from this thread alone). Any other channel is paced first (its
``min_interval_s``), then claimed and sent one at a time. Each outcome is appended as
soon as its send returns, at the stream's end (never refused by a race: it names its
attempt); outcomes that are ready together share one batch. So a killed notifier
leaves in doubt exactly the sends it had started, and the provider's count of
requests received matches the log's count of claims.

Stopping (``stop``, set by SIGTERM or SIGINT in ``kei notify run``) takes effect
between sends: the sends in flight finish and are recorded, nothing new is claimed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from msgspec import Struct

from kei.app.ledger.appending import NewEvent
from kei.app.notify.appends import append_guarded, append_outcomes
from kei.app.notify.config import NotifyConfig
from kei.app.notify.identity import claim_gone, notifier_id
from kei.domain.events.notify import NotifyAttempted, notify_stream
from kei.domain.notify.message import Notification
from kei.domain.notify.outcome import Failed, SendOutcome
from kei.domain.notify.policy import Append, Claim, DeliveryPolicy, after_send, decide
from kei.domain.notify.state import NotificationState, fold, fold_stream
from kei.errors import ConcurrencyError

if TYPE_CHECKING:
    from kei.adapters.notify.channel import Channel
    from kei.app.ledger.ledger import Ledger

log = logging.getLogger(__name__)


def now_us() -> int:
    return time.time_ns() // 1000


Chosen = Sequence[tuple[NotificationState, Claim]]
"""Notifications the policy says to claim now, with the claim's number."""


class Claimed(Struct, frozen=True):
    """A claim that landed: the state it was made on, the event, the message."""

    state: NotificationState
    claim: NotifyAttempted
    message: Notification


class Notifier:
    """Sends due notifications over ``channels`` (by name) with ``config``'s policies."""

    def __init__(
        self,
        ledger: Ledger,
        channels: Mapping[str, Channel],
        config: NotifyConfig,
        *,
        clock: Callable[[], int] = now_us,
        jitter: Callable[[], float] = random.random,
        stop: threading.Event | None = None,
    ) -> None:
        self.ledger, self.channels, self.config = ledger, channels, config
        self.clock, self.jitter = clock, jitter
        self.stop = stop or threading.Event()
        self.me = notifier_id()
        self._last_send: dict[str, float] = {}
        self._warned: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self.sent = 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def state(self, notification_id: str) -> NotificationState | None:
        """The notification's state, folded from its checked stream."""
        rows = self.ledger.read_stream_checked(notify_stream(notification_id))
        return fold_stream([(e.payload(), e.version, e.timestamp_us) for e in rows])

    def work(self, ids: Iterable[str]) -> int:
        """Do what is due now for these notifications; returns how many sends it made."""
        by_channel: dict[str, list[NotificationState]] = {}
        for nid in ids:
            s = self.state(nid)
            if s is not None:
                by_channel.setdefault(s.request.channel, []).append(s)
        before = self.sent
        for name, states in by_channel.items():
            if self.stop.is_set():
                break
            channel = self.channels.get(name)
            if channel is None:
                self._warn_once(name)
                continue
            self._channel(channel, self.config.policy(channel), states)
        return self.sent - before

    def _warn_once(self, name: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("notifications for channel %s wait: no such channel is configured", name)

    # -- one channel -------------------------------------------------------------------

    def _channel(
        self, channel: Channel, policy: DeliveryPolicy, states: Sequence[NotificationState]
    ) -> None:
        claims: list[tuple[NotificationState, Claim]] = []
        now = self.clock()
        for s in states:
            gone = s.claim is not None and claim_gone(s.claim.notifier)
            decision = decide(s, policy, now, claim_gone=gone)
            if isinstance(decision, Append):
                self._append(s, decision)
            elif isinstance(decision, Claim):
                claims.append((s, decision))
        together = policy.in_doubt == "retry" and channel.min_interval_s <= 0
        size = self.config.settings.senders if together else 1
        for i in range(0, len(claims), size):
            if self.stop.is_set() or not self._paced(channel):
                return
            claimed = self._claim(channel, policy, claims[i : i + size])
            if claimed:
                self._send(channel, policy, claimed)

    def _append(self, s: NotificationState, decision: Append) -> None:
        stream = notify_stream(s.notification_id)
        try:
            append_guarded(self.ledger, stream, [decision.payload], s.version)
        except ConcurrencyError:
            log.debug("%s moved; another notifier decides", s.notification_id)

    def _paced(self, channel: Channel) -> bool:
        """Wait out the channel's interval since its last send; False if told to stop."""
        last = self._last_send.get(channel.name)
        if last is not None and channel.min_interval_s > 0:
            left = last + channel.min_interval_s - time.monotonic()
            if left > 0 and self.stop.wait(left):
                return False
        return True

    def _claim(self, channel: Channel, policy: DeliveryPolicy, chosen: Chosen) -> list[Claimed]:
        """Append the claims (one batch; one at a time if another notifier won one)."""
        lease = self.clock() + int(policy.lease_s * 1e6)
        made = []
        for s, c in chosen:
            message = to_notification(s)
            claim = NotifyAttempted(
                notification_id=s.notification_id, attempt=c.attempt, notifier=self.me,
                request_sha256=hashlib.sha256(channel.request_bytes(message)).hexdigest(),
                lease_until_us=lease, after_in_doubt=c.after_in_doubt,
            )  # fmt: skip
            made.append(Claimed(s, claim, message))
        batch = [NewEvent(notify_stream(m.state.notification_id), m.claim, m.state.version)
                 for m in made]  # fmt: skip
        try:
            self.ledger.append(batch)
            return made
        except ConcurrencyError:
            pass
        won = []
        for event, item in zip(batch, made, strict=True):
            try:
                self.ledger.append([event])
                won.append(item)
            except ConcurrencyError:
                log.debug("%s was claimed by another notifier", item.state.notification_id)
        return won

    def _send(self, channel: Channel, policy: DeliveryPolicy, claimed: Sequence[Claimed]) -> None:
        """Send every claim at once; append each outcome as soon as it is known."""
        if len(claimed) == 1:
            self._record(policy, [(claimed[0], send_once(channel, claimed[0].message))])
            self._last_send[channel.name] = time.monotonic()
            return
        pool = self._pool = self._pool or ThreadPoolExecutor(
            max_workers=self.config.settings.senders, thread_name_prefix="kei-notify"
        )
        pending: dict[Future[SendOutcome], Claimed] = {
            pool.submit(send_once, channel, c.message): c for c in claimed
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            self._record(policy, [(pending.pop(f), f.result()) for f in done])
        self._last_send[channel.name] = time.monotonic()

    def _record(
        self, policy: DeliveryPolicy, results: Sequence[tuple[Claimed, SendOutcome]]
    ) -> None:
        now = self.clock()
        outcomes = []
        for c, outcome in results:
            state = fold(c.state, c.claim, c.state.version + 1, now)
            payloads = after_send(state, c.claim.attempt, outcome, policy, now, self.jitter())
            outcomes.append((notify_stream(c.state.notification_id), payloads))
        self.sent += len(results)
        append_outcomes(self.ledger, outcomes)


def to_notification(s: NotificationState) -> Notification:
    r = s.request
    return Notification(subject=r.subject, body_text=r.body_text, severity=r.severity, tags=r.tags)


def send_once(channel: Channel, message: Notification) -> SendOutcome:
    """One send; a channel that raises (it should not) counts as a transport failure
    that may have delivered."""
    started = time.perf_counter_ns()
    try:
        return channel.send(message)
    except Exception as exc:
        log.warning("channel %s raised %s", channel.name, type(exc).__name__)
        return Failed(failure_class="transport", retryable=True, in_doubt=True,
                      error=f"the channel raised {type(exc).__name__}",
                      latency_us=(time.perf_counter_ns() - started) // 1000)  # fmt: skip
