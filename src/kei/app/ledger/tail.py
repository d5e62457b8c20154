"""The live view of the log: the latest events, and following new ones as they commit.

This is the library half of ``kei events tail``; it reads and checks, the CLI prints.
What it trusts and checks:

- Nothing read is trusted, but a live view checks only what is cheap: each new event's
  link to the event before it (sequence number and previous hash, as ``verify-chain``
  steps 2-3) and its stored hash against its bytes (step 4), through the log's one
  follower (``kei.adapters.store.follow``). A break is shown as a warning and the
  next event is checked against the broken one. Signatures, keys and checkpoints are
  ``verify-chain``'s job.
- Filters (``--type``/``--stream`` globs) decide what is shown, never what is checked:
  the link is tracked over every event read, shown or not.
- Following reads strictly after the last position seen. Both stores assign positions
  under their write lock, so commit order is position order and nothing is skipped.
- Waiting uses the store's waiter (PostgreSQL LISTEN/NOTIFY; SQLite a short sleep) and
  polls every ``POLL_INTERVAL_S`` regardless, so a lost notification costs at most that.

Example::

    events, head = latest(store, 20, TailFilter(types=("agent.*",)))
    for item in Follower(store, after=head).follow():
        ...  # a RecordedEvent to show, or a ChainBreak to warn about
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any, Final

from msgspec import Struct
from msgspec.structs import replace

from kei.adapters.store.base import PAGE, EventStore, Waiter
from kei.adapters.store.follow import Break, LogFollower
from kei.domain import events
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link

log = logging.getLogger(__name__)
POLL_INTERVAL_S: Final = 0.5
MIN_WAIT_S: Final = 0.05
SUMMARY_KEYS: Final = 3
SUMMARY_VALUE_LEN: Final = 48
_BAD_TIME: Final = (OverflowError, ValueError, OSError)


class TailFilter(Struct, frozen=True):
    """Glob patterns (fnmatch, case-sensitive) on the event type and the stream id.

    An empty tuple matches everything; several patterns match when any one does.
    """

    types: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()

    def matches(self, record: StoredRecord | RecordedEvent) -> bool:
        return _any_match(record.type, self.types) and _any_match(record.stream, self.streams)

    @property
    def is_empty(self) -> bool:
        return not self.types and not self.streams


def _any_match(value: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)


class ChainBreak(Struct, frozen=True):
    """A followed event that does not link to the one read before it."""

    position: int
    kind: str
    detail: str


def link_of(record: StoredRecord | None) -> Link | None:
    return None if record is None else Link(record.position, record.seq, record.hash)


def latest(
    store: EventStore, n: int, where: TailFilter = TailFilter()
) -> tuple[list[RecordedEvent], Link | None]:
    """The last ``n`` events matching ``where``, oldest first, and the log's head link.

    The head is the last event in the log whether or not it matched, so a follower
    started from it checks the very next event's link.
    """
    if n <= 0:
        head = store.last(1)
        return [], link_of(head[-1] if head else None)
    if where.is_empty:
        records = store.last(n)
        return [RecordedEvent.from_record(r) for r in records], link_of(
            records[-1] if records else None
        )
    return _latest_filtered(store, n, where)


def _latest_filtered(
    store: EventStore, n: int, where: TailFilter
) -> tuple[list[RecordedEvent], Link | None]:
    """Scan backwards a page of positions at a time until ``n`` matches are found."""
    found: list[StoredRecord] = []
    head: StoredRecord | None = None
    hi = store.max_position()
    while hi > 0 and len(found) < n:
        lo = max(0, hi - PAGE)
        page = store.read(after=lo, upto=hi, limit=PAGE)
        if head is None and page:
            head = page[-1]
        matched = [r for r in page if where.matches(r)]
        found = matched[max(0, len(matched) - (n - len(found))) :] + found
        hi = lo
    return [RecordedEvent.from_record(r) for r in found], link_of(head)


class Follower:
    """Reads every event committed after a starting point, checking each link
    (``kei.adapters.store.follow``): a break is warned about, and the next event is
    checked against the broken one."""

    def __init__(
        self,
        store: EventStore,
        *,
        after: Link | None,
        where: TailFilter = TailFilter(),
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        self.store = store
        self.where = where
        self.poll_interval = poll_interval
        self._log = LogFollower(store, after)

    def poll(self) -> Iterator[RecordedEvent | ChainBreak]:
        """Everything committed since the last call: breaks first, then the event."""
        follower = self._log
        while True:
            for record in follower.read(PAGE):
                if self.where.matches(record):
                    yield RecordedEvent.from_record(record)
            if follower.broken is not None:
                yield from _breaks(follower.broken)
                record = follower.go_past()
                if self.where.matches(record):
                    yield RecordedEvent.from_record(record)
            elif follower.fetched < PAGE:
                return

    def follow(self) -> Iterator[RecordedEvent | ChainBreak]:
        """Poll forever, waiting on the store between polls; stop by closing the iterator."""
        waiter = self.store.open_waiter()
        try:
            while True:
                yield from self.poll()
                self._wait(waiter)
        finally:
            waiter.close()

    def _wait(self, waiter: Waiter) -> None:
        """Wait for a notification or the poll interval, never spinning on a broken waiter."""
        start = time.monotonic()
        if waiter.wait(self.poll_interval):
            return
        left = MIN_WAIT_S - (time.monotonic() - start)
        if left > 0:
            time.sleep(left)


def _breaks(broken: Break) -> Iterator[ChainBreak]:
    for finding in broken.findings:
        log.info("chain broken at position %s: %s", finding.position, finding.detail)
        yield ChainBreak(broken.record.position, finding.kind.value, finding.detail)


def summary(event: RecordedEvent) -> str:
    """A short ``key=value`` view of the payload, by the type's summary fields if known."""
    data = event.payload_data()
    if not isinstance(data, dict):
        return "<undecodable payload>" if data is None else _short(data)
    known = events.REGISTRY.get(event.type)
    keys = known.summary_fields if known else tuple(data)[:SUMMARY_KEYS]
    return " ".join(
        f"{printable(str(k))}={_short(data[k])}" for k in keys if data.get(k) is not None
    )


_CONTROLS: Final = {
    c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if c not in (9, 10)
}


def terminal_text(text: str) -> str:
    """Multi-line stored text safe to print: newlines and tabs kept, every other
    control character (ESC, CR, C1...) shown as ``\\xNN``, so it cannot drive the
    terminal."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def printable(text: str) -> str:
    """``text`` itself when printable, else JSON-quoted with ASCII escapes, so a hostile
    stream id or payload cannot send escape sequences to the reader's terminal."""
    return text if text.isprintable() else json.dumps(text)


def _short(value: Any) -> str:
    if not isinstance(value, str):
        text = printable(repr(value))
    elif not value.isprintable():
        text = json.dumps(value)
    elif not value or " " in value:
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = value
    if len(text) > SUMMARY_VALUE_LEN:
        text = text[: SUMMARY_VALUE_LEN - 1] + "…"
    return text


def time_text(event: RecordedEvent) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2025-11-24T10:00:00.123Z``."""
    try:
        return event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    except _BAD_TIME:
        return f"<time {event.timestamp_us} us>"


def event_dict(event: RecordedEvent) -> dict[str, Any]:
    """``event.to_dict()``, with ``"time": null`` when the stored time is out of range."""
    try:
        return event.to_dict()
    except _BAD_TIME:
        data = replace(event, timestamp_us=0).to_dict()
        data["time"] = None
        return data
