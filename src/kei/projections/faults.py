"""Events a read model could not fold: recorded, skipped, and reported on every read.

A signed event is in the log for ever. If a projection cannot fold one (an integer
wider than its 64-bit column, a payload that no longer decodes; writers refuse such
values since ``kei.domain.events.limits``, but an older release signed them), raising would
stop that read model at the event for good, and every command that reads it with it.
Instead ``fold_page`` folds the page inside a savepoint; if the fold raises, it
rolls back to the savepoint and folds the page again one event at a time, each in
its own savepoint, and every event that still fails gets a row in the projection's
``<name>_faults`` table (in the same transaction as the page) and is skipped.

- The row holds the event's position, stream, version, type and why. The reason is
  the domain's (``kei.domain.events.limits.payload_problem``, or the decode error), not the
  driver's, so SQLite and PostgreSQL record the same bytes and replay reproduces the
  digest; only a fault the limits do not explain is named by its exception class.
- The table is part of the projection's state and its digest, but only once it has a
  row: the digest of a read model without faults is what it was before this table
  existed, so bundles exported earlier still replay.
- ``report`` (called after every catch-up) logs one warning per read model that has
  faults, on logger ``kei.projections.faults``: the CLI prints it as ``kei: WARNING:``.
- Only errors a value can cause are faults (``is_data_error``: a payload that does
  not decode, an integer too wide for the driver, a date out of range, a value the
  store refuses as data). A lost connection, a full disk, a lock, running out of
  memory or a bug in a projection (any other exception) still propagate and leave
  the previous page, so a store problem never turns into skipped events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Column, MetaData, String, Table, exc

from kei.domain.events.limits import payload_problem
from kei.domain.log.recorded import RecordedEvent
from kei.errors import KeiError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

SUFFIX: Final = "_faults"
DIGEST_IF_ROWS: Final = "kei_digest_if_rows"
REASON_MAX: Final = 500
# What a value can make a fold raise: a payload that does not decode (KeiError), an
# integer too wide for the driver (OverflowError), a date out of range (ValueError),
# a field of the wrong type (TypeError, LookupError).
_DATA_ERRORS: Final = (KeiError, ValueError, TypeError, ArithmeticError, LookupError)

Fold = Callable[["Connection", Sequence[RecordedEvent]], None]


def faults_table(metadata: MetaData, name: str) -> Table:
    """The ``<name>_faults`` table of projection ``name`` (add it to ``define``'s list)."""
    return Table(
        name + SUFFIX,
        metadata,
        Column("position", BigInteger, primary_key=True),
        Column("stream", String, nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("type", String, nullable=False),
        Column("reason", String, nullable=False),
        info={DIGEST_IF_ROWS: True},
    )


def fold_page(conn: Connection, name: str, fold: Fold, events: Sequence[RecordedEvent]) -> None:
    """``fold(conn, events)``; events it cannot fold are recorded and skipped."""
    try:
        with conn.begin_nested():
            fold(conn, events)
        return
    except Exception as error:
        if not is_data_error(error):
            raise
        log.debug("read model %s could not fold a page; folding it one event at a time", name)
    for event in events:
        try:
            with conn.begin_nested():
                fold(conn, [event])
        except Exception as error:
            if not is_data_error(error):
                raise
            _record(conn, name, event, error)


def is_data_error(error: BaseException) -> bool:
    """Is ``error`` one a value in an event can cause (a fault), rather than a store
    problem or a bug (which must stop the catch-up, leaving the last page)?"""
    if isinstance(error, exc.DBAPIError):
        return isinstance(error, exc.DataError | exc.IntegrityError)
    if isinstance(error, exc.StatementError):  # a Python error while binding a value
        return error.orig is None or is_data_error(error.orig)
    return isinstance(error, _DATA_ERRORS)


def _record(conn: Connection, name: str, event: RecordedEvent, error: BaseException) -> None:
    reason = why(event, error)
    quote = conn.dialect.identifier_preparer.quote
    marks = "?, ?, ?, ?, ?" if conn.dialect.paramstyle == "qmark" else "%s, %s, %s, %s, %s"
    conn.exec_driver_sql(
        f"INSERT INTO {quote(name + SUFFIX)} (position, stream, version, type, reason) "
        f"VALUES ({marks})",
        (event.position, event.stream, event.version, event.type, reason),
    )


def why(event: RecordedEvent, error: BaseException) -> str:
    """Why ``event`` could not be folded, the same on every store (see the docstring)."""
    try:
        problem = payload_problem(event.payload())
    except KeiError as decode_error:
        problem = str(decode_error)
    if problem is None:
        problem = f"{event.type}: the fold raised {type(error).__name__}"
    return _printable(problem)[:REASON_MAX]


def _printable(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


def report(conn: Connection, tables: Mapping[str, Sequence[Table]]) -> list[str]:
    """One line per read model of ``tables`` (name -> its tables) that skipped events,
    each also logged as a warning; one query for all of them."""
    names = [n for n, ts in tables.items() if any(t.name == n + SUFFIX for t in ts)]
    if not names:
        return []
    return warn(names, conn.exec_driver_sql(report_sql(names)).all())


def report_sql(names: Sequence[str]) -> str:
    """The query ``warn`` reads: for each read model with faults, its index in
    ``names``, its first skipped position, why, and how many it skipped. Names are
    the projections' own (letters and underscores), quoted."""
    return " UNION ALL ".join(
        f'SELECT {i}, position, reason, (SELECT count(*) FROM "{n}{SUFFIX}") '
        f'FROM (SELECT position, reason FROM "{n}{SUFFIX}" ORDER BY position LIMIT 1) AS f{i}'
        for i, n in enumerate(names)
    )


def warn(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Log one warning line per row of ``report_sql(names)``; returns the lines."""
    lines = []
    for i, position, reason, count in sorted(tuple(r) for r in rows):
        more = f" (and {count - 1} more)" if count > 1 else ""
        line = f"read model {names[i]} skipped position {position}: {reason}{more}"
        log.warning("%s", line)
        lines.append(line)
    return lines
