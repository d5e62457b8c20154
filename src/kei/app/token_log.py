"""The token events of a ledger, caught up from the position last read.

``kei serve`` answers every request from a :class:`~kei.domain.tokens.book.TokenBook`
that must honour a ``kei tokens revoke`` run by another process by the next request.
So before each answer :meth:`TokenLog.catch_up` asks the store for its highest
position (one index probe, ``max_position``); when nothing was appended since the
last look, that is all it costs. Otherwise one query reads the rows between the two
positions whose stream starts with ``tokens/`` (a range of the position index, the
stream compared with ``substr``, which means the same bytes in SQLite and PostgreSQL
whatever the database's collation), so each event of the log is looked at once per
reader, the first catch-up reading the whole log. Appends commit in position order
(under the store's write lock), so nothing can later appear below a position read.

Every row is checked before it counts, as a write's reads are
(``app/ledger/checked_reads.py``: chain entry, hash, signature under the key
registry): a ``token.created`` written into the database by anyone without a
registered key grants nothing. A row that fails is skipped with a warning
(``kei verify-chain`` reports it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE
from kei.adapters.store.dialect import Dialect
from kei.adapters.store.sql import record
from kei.app.ledger.checked_reads import first_finding
from kei.domain.events.tokens import TOKENS_STREAM_PREFIX
from kei.domain.log.recorded import RecordedEvent
from kei.domain.tokens.book import TokenBook
from kei.errors import InputError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.domain.log.records import StoredRecord

log = logging.getLogger(__name__)

_ROWS: Final = (
    "SELECT e.{p}, e.originator_id, e.originator_version, e.topic, e.state, "
    "c.seq, c.prev_hash, c.hash FROM " + EVENTS_TABLE + " e "
    "LEFT JOIN " + CHAIN_TABLE + " c ON c.position = e.{p} "
    "WHERE e.{p} > ? AND e.{p} <= ? AND substr(e.originator_id, 1, {n}) = ? "
    "ORDER BY e.{p}"
)


class TokenLog:
    """A ledger's token book and the position it was folded up to."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.book = TokenBook()
        self.seen = 0  # every token event at or below this position is in the book
        position = Dialect.of(ledger.store.url).position
        self._sql = _ROWS.format(p=position, n=len(TOKENS_STREAM_PREFIX))

    def catch_up(self) -> int:
        """Fold the token events appended since the last call; how many there were."""
        store = self._ledger.store
        upto = store.max_position()
        if upto <= self.seen:
            return 0
        rows = store.select(self._sql, (self.seen, upto, TOKENS_STREAM_PREFIX))
        for row in rows:
            self._fold(record(row))
        self.seen = upto
        return len(rows)

    def _fold(self, stored: StoredRecord) -> None:
        event = RecordedEvent.from_record(stored)
        finding = first_finding(self._ledger, stored)
        if finding is not None:
            log.warning("token event at position %d skipped: %s", event.position, finding.detail)
            return
        try:
            payload = event.payload()
        except InputError as exc:  # an event type this kei does not know, on a tokens/ stream
            log.warning("token event at position %d skipped: %s", event.position, exc)
            return
        self.book.apply(payload, event.position, event.timestamp_us)
