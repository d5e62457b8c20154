"""The SQL both stores speak, written once over the few words in which they differ.

Reads, the verifier's scans, the signed heads' and the subtree hashes' tables and
rows, and the chain's DDL are one text for SQLite and PostgreSQL but for the
placeholder (``?`` or ``%s``), the position column (``rowid`` or
``notification_id``), how a column is read as its exact bytes, a list parameter
(``IN (?,?)`` or ``= ANY(%s)``), type names, "insert unless the key is taken", and
how the catalog tells that a table exists. A ``Dialect`` holds those words;
``Statements`` builds every statement from them once, when this module is imported,
so nothing on a store's hot path builds SQL per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from msgspec import Struct

from kei.adapters.store.base import CHAIN_TABLE, EVENTS_TABLE, HEADS_TABLE, TREE_TABLE
from kei.adapters.store.urls import sqlite_path

Params = Sequence[Any] | Mapping[str, Any]


class Dialect(Struct, frozen=True):
    """The words in which the two databases' shared SQL differs."""

    mark: str
    """The positional placeholder."""
    named: str
    """A named placeholder, ``{}`` standing for the name."""
    position: str
    """The events table's position column."""
    text_bytes: str
    """A text column (``{}``) read as its UTF-8 bytes, as stored."""
    blob_bytes: str
    """A binary column (``{}``) read as its bytes, whatever was stored in it."""
    arrays: bool
    """Lists go as one array parameter (``= ANY(%s)``), not one mark per item."""
    integer: str
    bigint: str
    blob: str
    insert_ignore: str
    """An INSERT that skips a row whose key is taken; ``{}`` stands for what follows
    ``INSERT INTO``."""
    tables_created: str
    """One row: how many of two named tables exist."""
    table_exists: str
    """One row, truthy when the named table exists."""

    @staticmethod
    def of(url: str) -> Dialect:
        """The dialect of the store at ``url`` (a store's password-free ``url`` will
        do): code above the stores asks this rather than test the scheme itself."""
        return SQLITE if sqlite_path(url) is not None else POSTGRES

    def any_of(self, values: Sequence[str]) -> tuple[str, Params]:
        """A condition "is one of ``values``" and its parameters."""
        if self.arrays:
            return f"= ANY({self.mark})", (list(values),)
        return f"IN ({','.join([self.mark] * len(values))})", tuple(values)


def _pair(**words: tuple[Any, Any]) -> tuple[Dialect, Dialect]:
    """The SQLite and the PostgreSQL dialect, from each word's two spellings."""
    return (
        Dialect(**{word: sqlite for word, (sqlite, _) in words.items()}),
        Dialect(**{word: postgres for word, (_, postgres) in words.items()}),
    )


SQLITE, POSTGRES = _pair(
    # word=(in SQLite, in PostgreSQL)
    mark=("?", "%s"),
    named=(":{}", "%({})s"),
    position=("rowid", "notification_id"),
    text_bytes=("CAST({} AS BLOB)", "convert_to({}, 'UTF8')"),
    blob_bytes=("CAST({} AS BLOB)", "{}"),
    arrays=(False, True),
    integer=("INTEGER", "integer"),
    bigint=("INTEGER", "bigint"),
    blob=("BLOB", "bytea"),
    insert_ignore=("INSERT OR IGNORE INTO {}", "INSERT INTO {} ON CONFLICT DO NOTHING"),
    tables_created=(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN (?, ?)",
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name IN (%s, %s)",
    ),
    table_exists=(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name = ?",
        "SELECT to_regclass(%s) IS NOT NULL",
    ),
)


class Statements:
    """Every shared statement of one dialect, built once."""

    def __init__(self, d: Dialect) -> None:
        self.dialect = d
        m, p = d.mark, d.position
        marks = ", ".join([m] * 5)
        self.select = (
            f"SELECT e.{p}, e.originator_id, e.originator_version, e.topic, e.state, "
            f"c.seq, c.prev_hash, c.hash FROM {EVENTS_TABLE} e "
            f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.{p} "
        )
        self.read = self.select + f"WHERE e.{p} > {m} ORDER BY e.{p} LIMIT {m}"
        self.read_upto = (
            self.select + f"WHERE e.{p} > {m} AND e.{p} <= {m} ORDER BY e.{p} LIMIT {m}"
        )
        self.read_stream = (
            self.select + f"WHERE e.originator_id = {m} ORDER BY e.originator_version"
        )
        self.read_stream_upto = (
            self.select + f"WHERE e.originator_id = {m} AND e.originator_version <= {m} "
            "ORDER BY e.originator_version"
        )
        self.last = self.select + f"ORDER BY e.{p} DESC LIMIT {m}"
        self.by_position = f" ORDER BY e.{p}"
        self.stream_version = (
            f"SELECT MAX(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = {m}"
        )
        self.max_position = f"SELECT MAX({p}) FROM {EVENTS_TABLE}"
        self.next_position = f"SELECT MIN({p}) FROM {EVENTS_TABLE} WHERE {p} > {m}"
        self.count = f"SELECT count(*) FROM {EVENTS_TABLE}"
        self.chain_at = (
            f"SELECT position, seq, prev_hash, hash FROM {CHAIN_TABLE} WHERE seq = {m} "
            "ORDER BY position LIMIT 1"
        )
        self.chain_at_probe = (
            f"SELECT * FROM (SELECT position, seq, prev_hash, hash FROM {CHAIN_TABLE} "
            f"WHERE position = {m} AND seq = {m}) AS probe "
            f"UNION ALL SELECT * FROM ({self.chain_at}) AS scan LIMIT 1"
        )
        """``chain_at`` after a probe of the row at position ``seq + 1`` (parameters:
        seq + 1, seq, seq): with the probe's row, ``LIMIT 1`` ends the statement before
        the scan starts; one statement, so one round trip either way."""
        self.chain_size = f"SELECT MAX(seq) FROM {CHAIN_TABLE}"
        self.chain_count = f"SELECT count(*) FROM {CHAIN_TABLE}"
        self.orphans = (
            f"SELECT c.position, c.seq, c.prev_hash, c.hash FROM {CHAIN_TABLE} c "
            f"LEFT JOIN {EVENTS_TABLE} e ON e.{p} = c.position "
            f"WHERE e.{p} IS NULL ORDER BY c.position"
        )
        self._scans(d)
        self._heads_and_tree(d, marks)

    def _scans(self, d: Dialect) -> None:
        """The verifier's rows: every text and blob column as the exact bytes stored."""
        p, text, blob = d.position, d.text_bytes.format, d.blob_bytes.format
        after, upto, limit = (d.named.format(n) for n in ("after", "upto", "limit"))
        self.scan_select = (
            f"SELECT e.{p}, {text('e.originator_id')}, e.originator_version, "
            f"{text('e.topic')}, {blob('e.state')}, c.seq, {blob('c.prev_hash')}, "
            f"{blob('c.hash')} FROM {EVENTS_TABLE} e "
            f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.{p} "
        )
        self.scan = (
            self.scan_select.rstrip() + f" AND c.position > {after} AND c.position <= {upto} "
            f"WHERE e.{p} > {after} AND e.{p} <= {upto} ORDER BY e.{p} LIMIT {limit}"
        )

    def _heads_and_tree(self, d: Dialect, marks: str) -> None:
        """The signed heads' and the subtree hashes' tables, and their rows."""
        big, blob = d.bigint, d.blob
        self.create_chain = (
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position {big} PRIMARY KEY, "
            f"seq {big} NOT NULL, prev_hash {blob} NOT NULL, hash {blob} NOT NULL)"
        )
        self.create_heads = (
            f"CREATE TABLE IF NOT EXISTS {HEADS_TABLE} (position {big} PRIMARY KEY, "
            f"first_seq {big} NOT NULL, seq {big} NOT NULL, key_id {blob} NOT NULL, "
            f"signature {blob} NOT NULL)"
        )
        heads = f"{HEADS_TABLE} (position, first_seq, seq, key_id, signature) VALUES ({marks})"
        self.insert_head = f"INSERT INTO {heads}"
        self.copy_head = d.insert_ignore.format(heads)
        next_head = "COALESCE(MAX(position) + 1, 0)"
        self.next_head = f"SELECT {next_head} AS n FROM {HEADS_TABLE}"
        self.next_head_value = f"(SELECT {next_head} FROM {HEADS_TABLE})"
        """The next signed head's counter, as a column of another query."""
        self.read_heads = (
            f"SELECT position, first_seq, seq, key_id, signature FROM {HEADS_TABLE} "
            f"WHERE position > {d.mark} ORDER BY position LIMIT {d.mark}"
        )
        self.stored_heads = (
            f"SELECT position, first_seq, seq, key_id, signature FROM {HEADS_TABLE} "
            f"WHERE position >= {d.mark} AND position <= {d.mark}"
        )
        """The head rows of a range of counters (``verbatim.copy_heads``)."""
        self.create_tree = (
            f"CREATE TABLE IF NOT EXISTS {TREE_TABLE} (level {d.integer} NOT NULL, "
            f"idx {big} NOT NULL, hash {blob} NOT NULL, last_position {big} NOT NULL, "
            "PRIMARY KEY (level, idx))"
        )
        self.put_tree = d.insert_ignore.format(
            f"{TREE_TABLE} (level, idx, hash, last_position) VALUES ({', '.join([d.mark] * 4)})"
        )


SQLITE_SQL: Final = Statements(SQLITE)
POSTGRES_SQL: Final = Statements(POSTGRES)
