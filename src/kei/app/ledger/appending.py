"""The append hot path: version bookkeeping and sealing a batch, for ``Ledger.append``.

Kept apart from ``ledger.py`` so the per-event loop stays small and measurable
(``bench/append_batch.py``). Rules:

- Per-event work is only what the byte layout needs: encode, sign (``seal``) and a
  ``PendingRecord``; lookups are hoisted out of the loop.
- Each stream's first event in a batch fixes its start: its ``expected_version``,
  else the stream's end (from this ledger's cache or one query for the batch).
- Recorded events are built from values at hand, never by re-parsing sealed bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from msgspec import Struct

from kei.adapters.store.base import ChainEntry, PendingRecord
from kei.domain import events
from kei.domain.log.envelope import HEADER_LEN, KEY_ID_LEN, SIG_LEN, batch_parts
from kei.domain.log.recorded import RecordedEvent
from kei.errors import InputError

_SIG_START = 1 + KEY_ID_LEN
_SIG_END = _SIG_START + SIG_LEN


class NewEvent(Struct, frozen=True):
    """An event to append. ``expected_version`` is the stream's version before this
    event; when given, a clash raises ConcurrencyError instead of being retried
    (streams without one in the same batch still append at their end)."""

    stream: str
    payload: events.Payload
    expected_version: int | None = None


def first_versions(new_events: Sequence[NewEvent]) -> dict[str, int | None]:
    """Each stream of a batch with its first event's ``expected_version`` (or None)."""
    first: dict[str, int | None] = {}
    for event in new_events:
        if event.stream in first:
            continue
        if not event.stream:
            raise InputError("an event needs a non-empty stream id")
        if event.expected_version is not None and event.expected_version < 0:
            raise InputError("expected_version cannot be negative")
        first[event.stream] = event.expected_version
    return first


def starts(first: dict[str, int | None], ends: dict[str, int]) -> dict[str, int]:
    """Each stream's version before the batch: expected, else its known end, else 0."""
    return {s: ends.get(s, 0) if v is None else v for s, v in first.items()}


class SealedBatch(Struct):
    """A sealed batch on its way into the store, and what it takes to report it."""

    pending: list[PendingRecord]
    schemas: list[int]
    timestamp_us: int
    ends: dict[str, int]

    def recorded(self, entries: Sequence[ChainEntry], key_id: str) -> list[RecordedEvent]:
        """The recorded events, one per pending record and its chain entry."""
        ts = self.timestamp_us
        return [
            RecordedEvent(
                e.position,
                e.seq,
                p.stream,
                p.version,
                p.type,
                schema,
                ts,
                key_id,
                p.state[_SIG_START:_SIG_END],
                p.state[HEADER_LEN:],
                e.prev_hash,
                e.hash,
            )
            for p, e, schema in zip(self.pending, entries, self.schemas, strict=True)
        ]


class BatchSigner(Protocol):
    """A key that signs many messages at once (``SigningKey``, ``ParallelSigner``)."""

    @property
    def key_id(self) -> bytes: ...

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]: ...


def seal_batch(
    new_events: Sequence[NewEvent],
    signer: BatchSigner,
    versions: dict[str, int],
    timestamp_us: int,
) -> SealedBatch:
    """Sign every event of a batch; ``versions`` holds each stream's start (updated).

    All messages are built first and signed in one call, so a ``ParallelSigner``
    can share the signatures between two cores.
    """
    type_of, encode = events.event_type_of, events.encode_payload
    unsigned = batch_parts(signer.key_id, timestamp_us)
    parts: list[tuple[bytes, bytes, bytes]] = []
    where: list[tuple[str, int, str]] = []
    schemas: list[int] = []
    for event in new_events:
        etype = type_of(event.payload)
        stream = event.stream
        version = versions[stream]
        if event.expected_version is not None and event.expected_version != version:
            raise InputError(
                f"stream {stream}: expected_version {event.expected_version} does not follow "
                f"version {version} earlier in the same batch"
            )
        version = versions[stream] = version + 1
        parts.append(
            unsigned(stream, version, etype.name, etype.schema_version, encode(event.payload))
        )
        where.append((stream, version, etype.name))
        schemas.append(etype.schema_version)
    signatures = signer.sign_many([message for message, _, _ in parts])
    join = b"".join
    pending = [
        PendingRecord(stream, version, name, join((head, sig, tail)))
        for (stream, version, name), (_, head, tail), sig in zip(
            where, parts, signatures, strict=True
        )
    ]
    return SealedBatch(pending, schemas, timestamp_us, versions)


class KnownEnds:
    """Stream ends this ledger committed itself, so a batch can skip asking the store.

    A cached end is never too high: it is recorded only after a commit succeeded.
    It may be too low when another writer appended since; the insert then clashes,
    the append is redone under the store's lock, and the stream is marked shared and
    never cached again, so busy shared streams do not pay a clash per batch.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.ends: dict[str, int] = {}
        self.shared: set[str] = set()
        self.limit = limit

    def remember(self, versions: dict[str, int]) -> None:
        if len(self.ends) + len(versions) > self.limit:
            self.ends.clear()
        shared = self.shared
        self.ends.update((s, v) for s, v in versions.items() if s not in shared)

    def forget(self, streams: Iterable[str]) -> None:
        if len(self.shared) > self.limit:
            self.shared.clear()
        for stream in streams:
            self.ends.pop(stream, None)
            self.shared.add(stream)
