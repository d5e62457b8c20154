"""Reading the log after a verified link: the one loop every reader that trusts what it
reads runs.

A ``LogFollower`` is a cursor: the position read up to and the chain link of the entry
there (None: the start of the log). Each ``read`` asks the store for the next page
after that position (up to ``upto``, when given), checks each record's link to the one
before it and its stored hash against its bytes (``verify-chain`` steps 1-4, through
``verify.first_break``: a run of good records costs one hash each) and hands over only
the records before the first break, moving the cursor past them. Signatures are
``verify-chain``'s job. Nothing past a break is handed over: ``broken`` names the
record and everything wrong with it, and each reader decides what a break means. The
projection engine, the Redis memory mirror and JSON-lines export stop
(``error`` words their ``VerificationError``); ``kei events tail`` warns and accepts the
record (``go_past``), so the next one is checked against it.

``scan`` is the same cursor over the verifier's raw rows (``EventStore.scan``: the bytes
exactly as stored, what a bundle carries), checked by ``RangeChecker`` in quick mode
(links and hashes), which keeps every finding of the range in ``scanned``: bundle export
refuses a range with any.

Example::

    follower = LogFollower(store, after=None)
    for page in follower.pages():
        ...  # verified records, in log order
    if follower.broken is not None:
        raise follower.error("my export")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from msgspec import Struct

from kei.adapters.store.base import PAGE, EventStore
from kei.domain.log.findings import Finding
from kei.domain.log.keyring import KeyRing
from kei.domain.log.records import StoredRecord
from kei.domain.log.verify import (
    Link,
    RangeChecker,
    RangeResult,
    Row,
    check_content,
    check_link,
    first_break,
)
from kei.errors import VerificationError

__all__ = ["Break", "LogFollower", "link_of"]

_NO_KEYS: Final = KeyRing()  # quick checks read no signature, so no key registry


def link_of(record: StoredRecord) -> Link:
    """The link the entry after ``record`` must follow."""
    return Link(record.position, record.seq, record.hash)


class Break(Struct, frozen=True):
    """The first record that does not follow the cursor, and everything wrong with it
    (its link, then its hash: the first is the one ``first_break`` names)."""

    record: StoredRecord
    findings: list[Finding]

    @property
    def first(self) -> Finding:
        return self.findings[0]


class LogFollower:
    """Reads the log after ``after``, handing over only what links to what came before.

    ``position`` is where reading starts (default: ``after``'s position, or 0); it
    differs from ``after`` only for a state row whose event has no chain entry, where the
    next record is checked as the first of the log. ``upto`` bounds every read. With
    ``keys`` set, ``scan`` checks signatures too (``verify-chain``'s full check, as ``kei
    serve``'s cached verification extends itself), else links and hashes only.
    """

    def __init__(
        self,
        store: EventStore,
        after: Link | None = None,
        *,
        position: int | None = None,
        upto: int | None = None,
    ) -> None:
        self.store = store
        self.keys: KeyRing | None = None  # set: ``scan`` checks signatures too
        self.link = after
        self.position = (
            position if position is not None else (0 if after is None else after.position)
        )
        self.upto = upto
        self.broken: Break | None = None
        self.fetched = 0  # how many records the last store read returned
        self._checker: RangeChecker | None = None

    def read(self, limit: int = PAGE) -> list[StoredRecord]:
        """The verified records of the next store read of at most ``limit`` records:
        all of them, or those before the first break (then ``broken`` is set and every
        later read returns nothing until ``go_past``). ``fetched == 0``: the log ended."""
        if self.broken is not None:
            self.fetched = 0
            return []
        records = self.store.read(after=self.position, limit=limit, upto=self.upto)
        self.fetched = len(records)
        if not records:
            return records
        i, finding = first_break(records, self.link)
        good = records if finding is None else records[:i]
        if good:
            self.link, self.position = link_of(good[-1]), good[-1].position
        if finding is not None:
            bad = records[i]
            self.broken = Break(bad, [*check_link(self.link, bad), *check_content(bad)])
        return good

    def pages(self, limit: int = PAGE) -> Iterator[list[StoredRecord]]:
        """Verified pages until the log ends or a break (see ``broken``)."""
        while page := self.read(limit):
            yield page

    def go_past(self) -> StoredRecord:
        """Accept the broken record: the next one is checked against it (a live view
        that warns and goes on). Returns it."""
        if self.broken is None:
            raise ValueError("nothing to go past: the follower is not at a break")
        record = self.broken.record
        self.link, self.position, self.broken = link_of(record), record.position, None
        return record

    def error(self, what: str, then: str = "") -> VerificationError:
        """The break as ``<what> stopped at position P: <kind>: <detail><then>``."""
        if self.broken is None:
            raise ValueError("no break to report")
        f = self.broken.first
        return VerificationError(
            f"{what} stopped at position {f.position}: {f.kind.value}: {f.detail}{then}",
            position=f.position,
            kind=f.kind.value,
        )

    # -- raw rows ------------------------------------------------------------------------

    def scan(self) -> list[Row]:
        """The next raw rows up to ``upto`` (a window of ``PAGE`` positions, gaps in the
        positions skipped), quick-checked as they pass; [] at ``upto`` or the log's end.

        Every row is handed over, findings or not: they are kept in ``scanned`` for the
        whole range, counted past ``RangeChecker``'s limit, for a caller that refuses a
        range with any (a bundle never carries a history that does not verify).
        """
        if self.upto is None:
            raise ValueError("scanning needs an upto position")
        while self.position < self.upto:
            window = min(self.upto, self.position + PAGE)
            rows = [tuple(r) for r in self.store.scan(after=self.position, upto=window, limit=PAGE)]
            if not rows:
                nxt = self.store.next_position(window)
                if nxt is None or nxt > self.upto:
                    return []
                self.position = nxt - 1
                continue
            if self._checker is None:
                keys = self.keys
                self._checker = RangeChecker(keys or _NO_KEYS, quick=keys is None, prev=self.link)
            self._checker.feed(rows)
            self.position, self.link = window, self._checker.result.last
            return rows
        return []

    @property
    def scanned(self) -> RangeResult:
        """The findings (and counts) of every row ``scan`` has handed over."""
        return RangeResult() if self._checker is None else self._checker.result
