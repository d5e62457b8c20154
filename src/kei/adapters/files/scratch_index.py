"""A throw-away index of strings on disk, so a long run's memory stays flat.

``kei import claude-code`` must remember every dedupe key it has met (hundreds of
thousands for a big ``~/.claude/projects``) and every sub-agent already closed. Held in
Python sets they grow with the input (129 MB for 1 GB of transcripts); here they live in
a SQLite file in a private temporary folder, so the process holds only SQLite's page
cache (``CACHE_KIB``) whatever the size. The file is deleted on ``close`` (and by the
``with`` block), error or not: nothing is left behind, and nothing in it is a record of
anything (it is rebuilt from the log on every run).

Each table maps a string to a small integer (a state the caller defines). Lookups and
writes go in batches (``get_many``/``put_many``), a few statements per batch, because
one statement per key would cost more than the import's own work per message.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Self

CACHE_KIB: Final = 8_192  # SQLite's page cache for the index, the memory it may hold
CHUNK: Final = 500  # keys per lookup statement (well below SQLite's variable limit)
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz_")


class ScratchIndex:
    """Named ``str -> int`` tables in one temporary SQLite file (see the module)."""

    def __init__(self, tables: Sequence[str]) -> None:
        if not tables or any(not t or set(t) - _NAME_CHARS for t in tables):
            raise ValueError(f"table names are lower-case words: {tables!r}")
        self._folder = Path(tempfile.mkdtemp(prefix="kei-scratch-"))
        try:
            self._db = sqlite3.connect(self._folder / "index.db", isolation_level=None)
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                           f"cache_size=-{CACHE_KIB}"):  # fmt: skip
                self._db.execute(f"PRAGMA {pragma}")
            for table in tables:
                self._db.execute(
                    f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID"
                )
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self._tables = frozenset(tables)

    def get_many(self, table: str, keys: Iterable[str]) -> dict[str, int]:
        """The value of each of ``keys`` that ``table`` holds (absent keys are left out)."""
        self._check(table)
        wanted = list(dict.fromkeys(keys))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT k, v FROM {table} WHERE k IN ({marks})", chunk)
            found.update(rows)
        return found

    def put_many(self, table: str, items: Iterable[tuple[str, int]]) -> None:
        """Set each key to its value (a later value of one key wins)."""
        self._check(table)
        self._db.execute("BEGIN")
        try:
            self._db.executemany(f"INSERT OR REPLACE INTO {table} (k, v) VALUES (?, ?)", items)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self, table: str) -> int:
        self._check(table)
        return int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        """Close the database and delete its folder (safe to call twice)."""
        try:
            self._db.close()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    @property
    def folder(self) -> Path:
        return self._folder

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, table: str) -> None:
        if table not in self._tables:
            raise ValueError(f"no table {table!r} in this index")
