"""A throw-away index of strings on disk, so a long run's memory stays flat.

``kei import claude-code`` must remember every dedupe key it has met (hundreds of
thousands for a big ``~/.claude/projects``) and every sub-agent already closed. Held in
Python sets they grow with the input (129 MB for 1 GB of transcripts); here they live in
a SQLite file in a private temporary folder, so the process holds only SQLite's page
cache (``CACHE_KIB``) whatever the size. The file is deleted on ``close`` (and by the
``with`` block), error or not: nothing is left behind, and nothing in it is a record of
anything (it is rebuilt from the log on every run).

Two kinds of table: a *map* (``str -> int``, a state the caller defines; a B-tree on
the key) and a *tally* (strings appended in any order, counted at the end, all and
distinct: no index to keep up, so an append costs a fraction of a map write). Lookups
and writes go in batches, a few statements per batch, because one statement per key
would cost more than the import's own work per message.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Final, Self

CACHE_KIB: Final = 2_048  # SQLite's page cache for the index, the memory it may hold
CHUNK: Final = 500  # keys per lookup statement (well below SQLite's variable limit)
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz_")


class ScratchIndex:
    """Named maps and tallies in one temporary SQLite file (see the module)."""

    def __init__(self, maps: Sequence[str], tallies: Sequence[str] = ()) -> None:
        names = [*maps, *tallies]
        if (
            not maps
            or len(set(names)) != len(names)
            or any(not t or set(t) - _NAME_CHARS for t in names)
        ):
            raise ValueError(f"table names are distinct lower-case words: {names!r}")
        self._folder = Path(tempfile.mkdtemp(prefix="kei-scratch-"))
        try:
            self._db = sqlite3.connect(self._folder / "index.db", isolation_level=None)
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                           f"cache_size=-{CACHE_KIB}"):  # fmt: skip
                self._db.execute(f"PRAGMA {pragma}")
            for table in maps:
                self._db.execute(
                    f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID"
                )
            for table in tallies:
                self._db.execute(f"CREATE TABLE {table} (k TEXT NOT NULL)")
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self._maps, self._tallies = frozenset(maps), frozenset(tallies)

    def get_many(self, table: str, keys: Iterable[str]) -> dict[str, int]:
        """The value of each of ``keys`` that map ``table`` holds (absent keys left out)."""
        self._check(table, self._maps)
        wanted = sorted(set(keys))  # in key order: neighbouring probes share pages
        found: dict[str, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT k, v FROM {table} WHERE k IN ({marks})", chunk)
            found.update(rows)
        return found

    def put_many(self, table: str, items: Iterable[tuple[str, int]]) -> None:
        """Set each key of map ``table`` to its value (a later value of one key wins)."""
        self._check(table, self._maps)
        rows = sorted(items, key=itemgetter(0))  # by key (stable): pages written while hot
        self._write(f"INSERT OR REPLACE INTO {table} (k, v) VALUES (?, ?)", rows)

    def add_many(self, table: str, values: Iterable[str]) -> None:
        """Append ``values`` to tally ``table`` (repeats count)."""
        self._check(table, self._tallies)
        self._write(f"INSERT INTO {table} (k) VALUES (?)", ((v,) for v in values))

    def tally(self, table: str) -> tuple[int, int]:
        """How many values tally ``table`` holds, and how many distinct ones."""
        self._check(table, self._tallies)
        row = self._db.execute(f"SELECT count(*), count(DISTINCT k) FROM {table}").fetchone()
        return int(row[0]), int(row[1])

    def count(self, table: str) -> int:
        self._check(table, self._maps)
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

    def _write(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        self._db.execute("BEGIN")
        try:
            self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _check(table: str, kind: frozenset[str]) -> None:
        if table not in kind:
            raise ValueError(f"no table {table!r} of that kind in this index")
