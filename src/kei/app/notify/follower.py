"""The rule follower: reads the log after its durable cursor and asks for notifications.

It reads through the log's one verified follower (``Ledger.follow``: every record's
link and hash checked, nothing handed over past a break), matches each event against
the rules and appends one ``notify.requested`` per match, at version 0 of the stream
the rule and trigger name (``kei.domain.notify.ids``). Then it moves its cursor.

Why a request can never be made twice: the stream is derived from the trigger's signed
coordinates, and an append at ``expected_version=0`` of a stream that exists is
refused by the log. A crash between the append and the cursor's move, a restart, a
replay of the same events and a second follower on another host all compute the same
streams; their appends are refused (or skipped, when the stream is seen to exist
first). The cursor only saves re-reading.

The cursor is a row of ``notify_follower_cursor`` (position, chain ``seq`` and hash)
in the read models' database, moved only forward. A follower's first run starts at the
log's end: rules notify what happens from then on (``from_start`` reads the whole
history instead).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa

from kei.adapters.readmodels.db import lock_schema
from kei.adapters.store.base import PAGE
from kei.adapters.store.follow import link_of
from kei.app.json_form import rfc3339
from kei.app.notify.appends import append_requests
from kei.domain.events.notify import NotifyRequested
from kei.domain.log.recorded import RecordedEvent
from kei.domain.log.verify import Link
from kei.domain.notify.requests import event_trigger, event_values, request
from kei.domain.notify.rules import Rule
from kei.errors import KeiError

if TYPE_CHECKING:
    from kei.app.ledger.ledger import Ledger
    from kei.app.readmodels import ReadModels
    from kei.domain.log.records import StoredRecord

log = logging.getLogger(__name__)

CURSOR_NAME: Final = "rules"
PAGES_PER_STEP: Final = 8
_meta = sa.MetaData()
cursor_table = sa.Table(
    "notify_follower_cursor",
    _meta,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("hash", sa.LargeBinary, nullable=True),
    sa.Column("started_us", sa.BigInteger, nullable=False),
)


class RuleFollower:
    """Matches the log's events against ``rules`` (those on events; checks are
    ``checks.py``'s) for channels of the kinds ``kinds`` names."""

    def __init__(
        self,
        ledger: Ledger,
        models: ReadModels,
        rules: Sequence[Rule],
        kinds: Mapping[str, str],
        *,
        name: str = CURSOR_NAME,
    ) -> None:
        self.ledger, self.models, self.kinds, self.name = ledger, models, kinds, name
        self.rules = [r for r in rules if r.check is None and r.enabled and r.channel in kinds]
        self._by_type: dict[str, list[Rule]] = {}
        self.started_us = 0
        self.more = False  # the last step stopped before the log's end

    # -- the cursor ----------------------------------------------------------------------

    def open(self, now_us: int, *, from_start: bool = False) -> Link | None:
        """The cursor, made on the first run (at the log's end, or its start)."""
        with self.models.engine.connect("notify follower: cursor") as conn, conn.begin():
            lock_schema(conn)
            _meta.create_all(conn)
            t = cursor_table
            row = conn.execute(sa.select(t).where(t.c.name == self.name)).first()
            if row is None:
                head = [] if from_start else self.ledger.store.last(1)
                link = link_of(head[0]) if head else None
                conn.execute(t.insert().values(
                    name=self.name, position=0 if link is None else link.position,
                    seq=link and link.seq, hash=link and link.hash, started_us=now_us,
                ))  # fmt: skip
                self.started_us = now_us
                return link
            self.started_us = row.started_us
            return None if row.hash is None else Link(row.position, row.seq, row.hash)

    def cursor(self) -> Link | None:
        with self.models.engine.connect("notify follower: cursor") as conn:
            t = cursor_table
            row = conn.execute(sa.select(t).where(t.c.name == self.name)).first()
        return None if row is None or row.hash is None else Link(row.position, row.seq, row.hash)

    def _save(self, link: Link) -> None:
        t = cursor_table
        with self.models.engine.connect("notify follower: cursor") as conn, conn.begin():
            conn.execute(
                t.update()
                .where(t.c.name == self.name, t.c.position < link.position)
                .values(position=link.position, seq=link.seq, hash=link.hash)
            )

    # -- following -----------------------------------------------------------------------

    def step(self) -> list[str]:
        """Read what the cursor has not (a few pages at most), request every match and
        move the cursor; returns the ids of the requests appended. VerificationError at
        a break in the chain (nothing at or after it is read)."""
        follower = self.ledger.follow(self.cursor())
        appended: list[str] = []
        self.more = False
        for _ in range(PAGES_PER_STEP):
            page = follower.read(PAGE)
            if page:
                appended += append_requests(self.ledger, self.requests(page))
                self._save(link_of(page[-1]))
            if follower.broken is not None:
                raise follower.error("notify rule follower", "; no rule sees what follows")
            if follower.fetched < PAGE:
                return appended
        self.more = True
        return appended

    def requests(self, page: Sequence[StoredRecord]) -> list[NotifyRequested]:
        """The requests the rules make for these verified records, in log order."""
        out: list[NotifyRequested] = []
        for record in page:
            rules = self._rules_for(record.type)
            if not rules:
                continue
            event = RecordedEvent.from_record(record)
            try:
                payload = event.payload()
            except KeiError as exc:  # signed by an older release, no longer decodes
                log.warning("rules skip position %d: %s", event.position, exc)
                continue
            values = event_values(
                payload, event_type=event.type, stream=event.stream,
                version=event.version, position=event.position,
                time=rfc3339(event.timestamp_us) or "",
            )  # fmt: skip
            for rule in rules:
                if rule.matches(event.type, values):
                    trigger = event_trigger(rule, values, stream=event.stream,
                                            version=event.version, ts_us=event.timestamp_us)  # fmt: skip
                    out.append(request(rule, trigger, self.kinds[rule.channel]))
        return out

    def _rules_for(self, event_type: str) -> list[Rule]:
        found = self._by_type.get(event_type)
        if found is None:
            found = self._by_type[event_type] = [r for r in self.rules if r.wants(event_type)]
        return found
