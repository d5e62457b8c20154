"""Reading and appending a target's stream, ``migrate/<target>``.

Every read goes through ``Ledger.read_stream_checked`` (chain entry, hash, signature
and versions of each row checked), because the runner decides from it. Two kinds of
append:

- :meth:`Recorder.claim` appends ``migrate.started`` at the stream's version as read:
  if another runner appended meanwhile (on this host or any other sharing the
  ledger), the claim is refused and nothing has touched the database yet;
- :meth:`Recorder.record` appends facts that are already true in the database (an
  outcome, a reconciliation, a drift) at the stream's end, whatever came between:
  losing the record of a committed migration to a race would be worse.

A driver's error text may hold data from the database; the leak matrix scans it as
free text. Should a rule refuse it outright, the event is recorded with the text
withheld rather than not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from kei.app.ledger.ledger import Ledger, NewEvent
from kei.domain.events import Payload
from kei.domain.events.migrate import MigrationDrift, MigrationFailed, MigrationStarted
from kei.domain.log.recorded import RecordedEvent
from kei.domain.migrate.history import History, fold
from kei.domain.migrate.target import Target
from kei.errors import ConcurrencyError, ContentionError, InputError, LeakBlockedError

WITHHELD: Final = "(withheld: the leak matrix refused this text)"


class Recorder:
    """One target's stream in one ledger."""

    def __init__(self, ledger: Ledger, target: Target) -> None:
        self.ledger = ledger
        self.target = target

    def history(self) -> History:
        """The stream, every row checked, folded."""
        rows = self.ledger.read_stream_checked(self.target.stream)
        return fold((e.position, e.key_id, p) for e in rows if (p := _payload(e)))

    def claim(self, started: MigrationStarted, history: History) -> RecordedEvent:
        """Append ``started`` where ``history`` ended, or refuse: another runner moved
        the stream."""
        try:
            (event,) = self.ledger.append(
                [NewEvent(self.target.stream, started, history.stream_version)]
            )
        except ConcurrencyError:
            raise ContentionError(
                f"another runner recorded a change to {self.target.identity} at the same "
                f"time; migration {started.version} was not run",
                hint="run the command again",
            ) from None
        return event

    def record(self, payloads: Sequence[Payload]) -> list[RecordedEvent]:
        """Append facts at the stream's end (see the module docstring)."""
        if not payloads:
            return []
        events = [NewEvent(self.target.stream, p) for p in payloads]
        try:
            return self.ledger.append(events)
        except LeakBlockedError:
            return self.ledger.append(
                [NewEvent(self.target.stream, _withheld(p)) for p in payloads]
            )


def _withheld(payload: Payload) -> Payload:
    if isinstance(payload, MigrationFailed):
        return msgspec.structs.replace(payload, error=WITHHELD)
    if isinstance(payload, MigrationDrift):
        return msgspec.structs.replace(payload, detail=WITHHELD)
    return payload


def _payload(event: RecordedEvent) -> Payload | None:
    try:
        return event.payload()
    except InputError:
        return None  # a type this kei does not know: not one of the runner's
