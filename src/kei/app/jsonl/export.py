"""The log as JSON lines, for other tools: every event with its hashes, its signature
and its exact stored bytes, so a reader can check it without kei and
``kei events import`` can take it back byte for byte.

One object per line, in log order (keys as in ``RecordedEvent.to_dict`` plus
``state``, the whole stored envelope in base64)::

    {"position": 2, "seq": 1, "time": "2026-11-25T12:00:00.000001Z", "type": "agent.forked",
     "stream": "agent/a1", "version": 1, "schema_version": 2, "key_id": "…",
     "payload": {…}, "prev_hash": "sha256:…", "hash": "sha256:…",
     "signature": "ed25519:…", "state": "AQ…"}

For a ledger whose genesis declares signed heads (``docs/events.md`` §4b), each
transaction's head follows the line of its last event, as one more object::

    {"head": 3, "first_seq": 1, "seq": 4, "key_id": "…", "signature": "ed25519:…"}

(``head`` is the head's counter). Readers that know only event lines can skip objects
with a ``head`` key; files written before heads have none and import as before.

Export reads the log in pages (memory stays flat) through the log's one follower
(``kei.adapters.store.follow``), which checks every link and hash as it goes: it stops
with ``VerificationError`` at the first break instead of handing a damaged history to
another tool.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from typing import IO, Any

import msgspec

from kei.adapters.store.base import PAGE, EventStore
from kei.adapters.store.follow import LogFollower
from kei.domain.log.heads import HeadRow
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import Link
from kei.errors import InputError

_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder()


def line_of(record: StoredRecord) -> bytes:
    """One event as one JSON line (with its newline)."""
    data = RecordedEvent.from_record(record).to_dict()
    data["state"] = base64.b64encode(record.state).decode("ascii")
    return _ENCODE.encode(data) + b"\n"


def head_line(row: HeadRow) -> bytes:
    """One signed head as one JSON line (with its newline)."""
    position, first_seq, seq, key_id, signature = row
    data = {
        "head": position, "first_seq": first_seq, "seq": seq, "key_id": bytes(key_id).hex(),
        "signature": "ed25519:" + bytes(signature).hex(),
    }  # fmt: skip
    return _ENCODE.encode(data) + b"\n"


def export_jsonl(store: EventStore, out: IO[bytes], *, since: int = 0) -> int:
    """Write every event after position ``since`` to ``out``, each transaction's signed
    head after its last event; returns how many events. A page with a break in it is
    not written at all."""
    follower = LogFollower(store, _link_before(store, since), position=since)
    heads = _Heads(store)
    written = 0
    while True:
        page = follower.read(PAGE)
        if follower.broken is not None:
            raise follower.error("export", "; run `kei verify-chain` for every finding")
        if not page:
            return written
        out.write(b"".join(heads.after(r, line_of(r)) for r in page))
        written += len(page)


class _Heads:
    """The head rows, read a page at a time as the export's events pass their seqs."""

    def __init__(self, store: EventStore) -> None:
        self._store, self._after, self._done = store, -1, False
        self._queue: list[HeadRow] = []

    def after(self, record: StoredRecord, line: bytes) -> bytes:
        """``line``, followed by the line of the head ending at ``record``, if any."""
        seq = record.seq if record.seq is not None else -1
        while not self._done and (not self._queue or self._queue[-1][2] < seq):
            page = self._store.read_heads(after=self._after, limit=PAGE)
            self._done = len(page) < PAGE
            if page:
                self._after = int(page[-1][0])
            self._queue += page
        while self._queue and self._queue[0][2] < seq:
            self._queue.pop(0)
        if self._queue and self._queue[0][2] == seq:
            return line + head_line(self._queue.pop(0))
        return line


def _link_before(store: EventStore, since: int) -> Link | None:
    """The entry at or before position ``since``, which the first exported one follows
    (None from the start of the log). Positions may have gaps, so look back a page
    first and from the start only if that finds nothing."""
    if since <= 0:
        return None
    for start in (max(0, since - PAGE), 0):
        found: StoredRecord | None = None
        after = start
        while page := store.read(after=after, limit=PAGE, upto=since):
            found, after = page[-1], page[-1].position
        if found is not None:
            return Link(found.position, found.seq, found.hash)
    return None


def read_jsonl(
    lines: Iterable[bytes], heads: list[HeadRow] | None = None
) -> Iterator[StoredRecord]:
    """Stored records from JSON lines written by ``export_jsonl`` (nothing checked yet:
    the importer verifies signatures, the chain and heads); InputError names a bad line.
    Head lines are added to ``heads`` (skipped when it is None)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = _DECODE.decode(line)
            if isinstance(data, dict) and "head" in data:
                if heads is not None:
                    heads.append(_head(data))
                continue
            yield _record(data)
        except (msgspec.DecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise InputError(
                f"line {number} is not a kei event ({type(exc).__name__}: {exc})",
                hint="give a file written by `kei events export --format jsonl`",
            ) from None


def _record(data: dict[str, Any]) -> StoredRecord:
    return StoredRecord(
        position=_int(data["position"]),
        stream=str(data["stream"]),
        version=_int(data["version"]),
        type=str(data["type"]),
        state=base64.b64decode(data["state"], validate=True),
        seq=None if data["seq"] is None else _int(data["seq"]),
        prev_hash=_digest(data["prev_hash"]),
        hash=_digest(data["hash"]),
    )


def _head(data: dict[str, Any]) -> HeadRow:
    signature = str(data["signature"])
    if not signature.startswith("ed25519:"):
        raise ValueError(f"expected 'ed25519:<hex>', found {signature[:20]!r}")
    return (
        _int(data["head"]), _int(data["first_seq"]), _int(data["seq"]),
        bytes.fromhex(str(data["key_id"])), bytes.fromhex(signature.removeprefix("ed25519:")),
    )  # fmt: skip


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, found {value!r}")
    return value


def _digest(value: Any) -> bytes | None:
    if value is None:
        return None
    text = str(value)
    if not text.startswith("sha256:"):
        raise ValueError(f"expected 'sha256:<hex>', found {text[:20]!r}")
    return bytes.fromhex(text.removeprefix("sha256:"))
