"""The seam between ``kei migrate``'s runner and a target database, one class per dialect.

A :class:`TargetDatabase` is one connection to the target, held for the whole
command. ``session_lock`` takes the database-side lock every runner takes
(PostgreSQL ``pg_advisory_lock``, MySQL/MariaDB ``GET_LOCK``; on SQLite the lock is
each transaction's ``BEGIN IMMEDIATE``), released when the block ends or the process
dies (the server drops a dead session's locks; SQLite rolls a dead writer's journal
back). ``transaction`` is one unit of work: on SQLite it begins with ``BEGIN
IMMEDIATE``, so it is also the lock; ``commit`` makes what was done durable and goes
on in a new transaction; leaving the block rolls back whatever was not committed.

``transactional_ddl`` says whether a migration's statements and its tracker row can
commit as one (SQLite, PostgreSQL) or whether DDL commits as it runs (MySQL/MariaDB),
where the runner brackets the run with a row in ``_kei_migrations_started``.

Each dialect writes its own SQL with its driver's placeholder (``?`` for sqlite3,
``%s`` for psycopg and PyMySQL; upstream's ``$1`` worked on none but PostgreSQL), and
never formats a value into SQL text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, ClassVar, Final, Protocol

from kei.domain.migrate.target import Target
from kei.domain.migrate.tracker import StartedRow, TrackerRow
from kei.errors import ContentionError, StoreError

MAX_ERROR_CHARS: Final = 4_000


class ScriptError(Exception):
    """A migration's SQL failed (the driver's message, first lines only);
    ``statements_run`` counts the statements that succeeded before it, when known."""

    def __init__(self, message: str, statements_run: int | None) -> None:
        super().__init__(message)
        self.statements_run = statements_run


class Transaction(Protocol):
    """One unit of work on the target (see the module docstring)."""

    def rows(self) -> list[TrackerRow]: ...

    def started_rows(self) -> list[StartedRow]: ...

    def schema_digest(self) -> str: ...

    def run(self, sql: str) -> int | None:
        """Run a migration file as written; the statements run (None: not counted).
        Raises ScriptError."""
        ...

    def insert_row(self, row: TrackerRow) -> None: ...

    def delete_row(self, version: int) -> None: ...

    def mark_started(self, row: StartedRow) -> None: ...

    def clear_started(self, version: int) -> None: ...

    def commit(self) -> None: ...


class TargetDatabase(Protocol):
    """One open target database."""

    target: Target
    transactional_ddl: bool

    def session_lock(self) -> AbstractContextManager[None]: ...

    def ensure_tracker(self) -> None: ...

    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def close(self) -> None: ...


def error_text(exc: BaseException) -> str:
    """A driver error as the log keeps it: its message, bounded, no trailing blanks."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def first_line(exc: BaseException) -> str:
    """A driver error on one line, for a message."""
    lines = error_text(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def texts(values: Iterator[object]) -> list[str]:
    """Driver values as text (bytes decoded)."""
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


class Connected:
    """What every dialect's connection shares: the driver's errors (outside a
    migration's own SQL) as one ``StoreError`` line naming the target, the tracker DDL
    run and committed, the lock refusal, and closing."""

    target: Target
    conn: Any
    driver_error: type[Exception] = Exception
    ddl: ClassVar[tuple[str, ...]] = ()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self.driver_error as exc:
            raise StoreError(f"target {self.target.identity}: {first_line(exc)}") from exc

    def ensure_tracker(self) -> None:
        with self._errors():
            cur = self.conn.cursor()
            for statement in self.ddl:
                cur.execute(statement)
            cur.close()
            self.conn.commit()

    def locked(self) -> ContentionError:
        return ContentionError(
            f"another kei migrate holds the lock on {self.target.identity}",
            hint="wait for it to finish, then run again",
        )

    def close(self) -> None:
        with suppress(self.driver_error):
            self.conn.close()
