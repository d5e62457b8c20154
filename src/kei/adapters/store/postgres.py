"""The scale-out store: PostgreSQL through eventsourcing's psycopg 3 recorder.

Appends go through ``ChainedPostgresRecorder`` (``postgres_recorder.py``), which
links each batch into the chain under the events table's EXCLUSIVE lock. Positions
come from a sequence and may have gaps after a rolled-back insert; the chain's own
sequence numbers never do. This module parses URLs, probes the server so an
unreachable one is one line, reads raw records back, and listens: every insert sends
NOTIFY on the events channel, which ``open_waiter`` listens to (followers also poll).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import psycopg
from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row

from kei.adapters.store.base import (
    CHAIN_TABLE,
    EVENTS_TABLE,
    HEADS_TABLE,
    PAGE,
    TREE_TABLE,
    ChainEntry,
)
from kei.adapters.store.postgres_recorder import ENDS_SQL, ChainedPostgresRecorder
from kei.adapters.store.recording import RecorderAppends
from kei.adapters.store.urls import redact_url
from kei.domain.log.heads import HeadRow
from kei.domain.log.records import StoredRecord
from kei.errors import ConcurrencyError, InputError, StoreError, StoreNotInitialisedError

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S: Final = 5
_SELECT: Final = (
    "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
    f"c.seq, c.prev_hash, c.hash FROM {EVENTS_TABLE} e "
    f"LEFT JOIN {CHAIN_TABLE} c ON c.position = e.notification_id "
)


_SCHEMES: Final = ("postgresql", "postgres", "postgresql+psycopg")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_USED: Final = ("dbname", "host", "port", "user", "password")


def parse_url(url: str) -> dict[str, Any]:
    """Connection arguments from a SQLAlchemy-style ``postgresql://`` URL, parsed by
    libpq's own parser (``conninfo_to_dict``), so ``?password=``, ``?user=``,
    ``?host=``, ``?port=`` and percent-escapes mean what they mean to ``psql``.
    A URL that does not parse is a one-line StoreError that shows it redacted."""
    scheme = url.partition("://")[0]
    if scheme not in _SCHEMES:
        raise InputError(f"not a PostgreSQL URL: {redact_url(url)!r}")
    libpq_url = "postgresql" + url[len(scheme) :]
    if _BAD_ESCAPE.search(url):
        raise _malformed(url, "a '%' that does not start a two-digit hex escape")
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port
        given = conninfo_to_dict(libpq_url)
    except (ValueError, psycopg.Error) as exc:
        raise _malformed(url, _without_values(str(exc))) from None
    args: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
    args.update({k: v for k, v in given.items() if k in _USED and v not in (None, "")})
    if not args.get("dbname"):
        raise InputError(
            f"PostgreSQL URL {redact_url(url)!r} names no database",
            hint="use postgresql://user@host:port/dbname",
        )
    try:
        args["port"] = int(args["port"])
    except (TypeError, ValueError):
        raise _malformed(url, "the port is not a number") from None
    if not 0 < args["port"] < 65536:
        raise _malformed(url, "the port is out of range 1-65535")
    return args


def connection_options(url: str) -> dict[str, str]:
    """The URL's other libpq options (``sslmode``, ``sslrootcert``, ``application_name``,
    ``options``, ``target_session_attrs``...), passed to every connection as given: a
    ``?sslmode=require`` that kei dropped would connect in clear without a word. Call
    after ``parse_url``, which has refused a URL that does not parse."""
    given = conninfo_to_dict("postgresql" + url[len(url.partition("://")[0]) :])
    return {k: str(v) for k, v in given.items() if k not in _USED and v not in (None, "")}


def _add_options(datastore: PostgresDatastore, args: dict[str, Any]) -> None:
    """Give the library's pool (opened lazily, on first use) every connection argument,
    the libpq options it takes no parameter for included."""
    kwargs = datastore.pool.kwargs
    if not isinstance(kwargs, dict):  # pragma: no cover - the library's pool changed
        raise StoreError("cannot pass connection options to the PostgreSQL pool")
    kwargs.update(args)


def _malformed(url: str, why: str) -> StoreError:
    return StoreError(
        f"malformed PostgreSQL URL {redact_url(url)}: {why}",
        hint="use postgresql://user:password@host:port/dbname (percent-escape special "
        "characters in the password)",
    )


def _without_values(message: str) -> str:
    """The parser's message on its first line, with quoted values (maybe a secret:
    ``postgresql://user:secret/db`` reads as host ``user``, port ``secret``) hidden."""
    first = message.strip().splitlines()[0] if message.strip() else "it does not parse"
    return re.sub(r"'[^']*'", "'***'", re.sub(r'"[^"]*"', '"***"', first))


class PostgresStore(RecorderAppends):
    """kei's event store on one PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 2) -> None:
        self.url = redact_url(url)
        named = parse_url(url)
        self._args: dict[str, Any] = {**named, **connection_options(url)}
        self._probe()
        try:
            self._datastore = PostgresDatastore(
                **named,
                connect_timeout=CONNECT_TIMEOUT_S,
                pool_size=pool_size,
                max_overflow=2,
                originator_id_type="text",
                enable_db_functions=False,
                lock_timeout=0,
            )
            _add_options(self._datastore, self._args)
            self.recorder = ChainedPostgresRecorder(self._datastore)
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreError(f"cannot open PostgreSQL store {self.url}: {exc}") from exc

    def _probe(self) -> None:
        """Fail fast, with one line, when the server is unreachable or refuses us."""
        try:
            psycopg.connect(**self._args, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.url}: {first}",
                hint="check that the server runs and the URL (KEI_DB or --db) is right",
            ) from exc

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            with self._datastore.transaction(commit=False) as curs:
                yield curs
        except psycopg.errors.UndefinedTable as exc:
            raise _not_initialised(self.url) from exc
        except (PersistenceError, psycopg.Error) as exc:
            if "does not exist" in str(exc) and EVENTS_TABLE in str(exc):
                raise _not_initialised(self.url) from exc
            raise StoreError(f"PostgreSQL store {self.url} failed: {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._cursor() as curs:
            curs.execute(sql, params)
            rows: list[Any] = curs.fetchall()
            return rows

    def create(self) -> None:
        try:
            self.recorder.create_table()
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreError(f"cannot create tables in {self.url}: {exc}") from exc

    def is_created(self) -> bool:
        rows = self._query(
            "SELECT count(*) AS n FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name IN (%s, %s)",
            (EVENTS_TABLE, CHAIN_TABLE),
        )
        return bool(rows[0]["n"] == 2)

    @contextlib.contextmanager
    def _appending(self) -> Iterator[None]:
        try:
            yield
        except ESIntegrityError as exc:
            raise ConcurrencyError(f"a stream version was taken by another writer: {exc}") from exc
        except (PersistenceError, psycopg.Error) as exc:
            if "does not exist" in str(exc):
                raise _not_initialised(self.url) from exc
            raise StoreError(f"PostgreSQL store {self.url} failed: {exc}") from exc

    def stream_version(self, stream: str) -> int:
        rows = self._query(
            f"SELECT MAX(originator_version) AS v FROM {EVENTS_TABLE} WHERE originator_id = %s",
            (stream,),
        )
        return int(rows[0]["v"] or 0)

    def stream_versions(self, streams: Sequence[str]) -> dict[str, int]:
        rows = self._query(ENDS_SQL, (list(dict.fromkeys(streams)),))
        return {str(r["s"]): int(r["v"]) for r in rows if r["v"] is not None}

    def read(
        self, *, after: int = 0, limit: int = PAGE, upto: int | None = None
    ) -> list[StoredRecord]:
        where, params = "WHERE e.notification_id > %s ", [after]
        if upto is not None:
            where += "AND e.notification_id <= %s "
            params.append(upto)
        rows = self._query(
            _SELECT + where + "ORDER BY e.notification_id LIMIT %s", (*params, limit)
        )
        return [_record(r) for r in rows]

    def read_stream(self, stream: str) -> list[StoredRecord]:
        rows = self._query(
            _SELECT + "WHERE e.originator_id = %s ORDER BY e.originator_version", (stream,)
        )
        return [_record(r) for r in rows]

    def read_types(self, types: Sequence[str]) -> list[StoredRecord]:
        rows = self._query(
            _SELECT + "WHERE e.topic = ANY(%s) ORDER BY e.notification_id", (list(types),)
        )
        return [_record(r) for r in rows]

    def last(self, n: int) -> list[StoredRecord]:
        rows = self._query(_SELECT + "ORDER BY e.notification_id DESC LIMIT %s", (n,))
        return [_record(r) for r in reversed(rows)]

    def max_position(self) -> int:
        rows = self._query(f"SELECT MAX(notification_id) AS m FROM {EVENTS_TABLE}")
        return int(rows[0]["m"] or 0)

    def count(self) -> int:
        return int(self._query(f"SELECT count(*) AS n FROM {EVENTS_TABLE}")[0]["n"])

    def chain_at(self, seq: int) -> ChainEntry | None:
        rows = self._query(
            f"SELECT position, seq, prev_hash, hash FROM {CHAIN_TABLE} WHERE seq = %s "
            "ORDER BY position LIMIT 1",
            (seq,),
        )
        return _entry(rows[0]) if rows else None

    def chain_size(self) -> int:
        rows = self._query(f"SELECT MAX(seq) AS m FROM {CHAIN_TABLE}")
        return 0 if rows[0]["m"] is None else int(rows[0]["m"]) + 1

    def orphan_chain_entries(self) -> list[ChainEntry]:
        rows = self._query(
            f"SELECT c.position, c.seq, c.prev_hash, c.hash FROM {CHAIN_TABLE} c "
            f"LEFT JOIN {EVENTS_TABLE} e ON e.notification_id = c.position "
            "WHERE e.notification_id IS NULL ORDER BY c.position"
        )
        return [_entry(r) for r in rows]

    def open_waiter(self) -> _Listener:
        return _Listener(self)

    def close(self) -> None:
        self._datastore.close()

    # -- verification scans (kei verify-chain) --------------------------------

    def scan(self, *, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        """Raw rows ``after < position <= upto`` for the verifier, as plain tuples.

        (position, stream, version, type, state, seq, prev_hash, hash); stream and type
        as their UTF-8 bytes, fetched in binary format so bytea needs no hex decoding.
        """
        with self._cursor() as curs, curs.connection.cursor(row_factory=tuple_row) as c:
            c.execute(_SCAN, {"after": after, "upto": upto, "limit": limit}, binary=True)
            rows: list[tuple[Any, ...]] = c.fetchall()
            return rows

    def chain_count(self) -> int:
        """The number of chain rows (the verifier compares it with the rows it saw)."""
        return int(self._query(f"SELECT count(*) AS n FROM {CHAIN_TABLE}")[0]["n"])

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read of the read models beside the log, as plain tuples (``?`` marks, so
        the same text serves SQLite; kei's read queries hold no literal ``?``)."""
        with self._cursor() as curs, curs.connection.cursor(row_factory=tuple_row) as c:
            c.execute(sql.replace("?", "%s"), params)
            rows: list[tuple[Any, ...]] = c.fetchall()
            return rows

    def next_position(self, after: int) -> int | None:
        """The lowest position above ``after`` (an index probe), None past the end."""
        rows = self._query(
            f"SELECT MIN(notification_id) AS m FROM {EVENTS_TABLE} WHERE notification_id > %s",
            (after,),
        )
        found = rows[0]["m"]
        return None if found is None else int(found)

    def scan_types(self, types: Sequence[str]) -> list[tuple[Any, ...]]:
        """Raw rows (as ``scan``) of the given event types, in position order."""
        with self._cursor() as curs, curs.connection.cursor(row_factory=tuple_row) as c:
            c.execute(_SCAN_TYPES, (list(types),), binary=True)
            rows: list[tuple[Any, ...]] = c.fetchall()
            return rows

    # -- stored Merkle subtree hashes (app/ledger/merkle_tree.py) ------------------------

    def has_tree_table(self) -> bool:
        rows = self._query("SELECT to_regclass(%s) IS NOT NULL AS found", (TREE_TABLE,))
        return bool(rows[0]["found"])

    def put_tree_nodes(self, rows: Sequence[tuple[int, int, bytes, int]]) -> None:
        try:
            with self._datastore.transaction(commit=True) as c:
                c.execute(_TREE_DDL)
                if rows:
                    c.executemany(
                        f"INSERT INTO {TREE_TABLE} (level, idx, hash, last_position) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        rows,
                    )
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreError(f"PostgreSQL store {self.url} failed: {exc}") from exc

    def read_heads(self, *, after: int, limit: int) -> list[HeadRow]:
        if not self._query("SELECT to_regclass(%s) IS NOT NULL AS found", (HEADS_TABLE,))[0][
            "found"
        ]:
            return []
        return self.select(
            f"SELECT position, first_seq, seq, key_id, signature FROM {HEADS_TABLE} "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (after, limit),
        )

    # -- replay (kei replay) ---------------------------------------------------------

    def insert_stored(
        self,
        pages: Iterable[Sequence[tuple[Any, ...]]],
        *,
        head: ChainEntry | None,
        create: bool = False,
        heads: Iterable[HeadRow] = (),
    ) -> int:
        """Insert verified rows verbatim in one transaction (``store/verbatim.py``)."""
        try:
            inserted = int(self.recorder.insert_stored(pages, head, create=create, heads=heads))
        except (ESIntegrityError, psycopg.errors.IntegrityError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(
                f"{self.url} refused the replayed events ({first}); nothing was written"
            ) from exc
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreError(f"PostgreSQL store {self.url} failed: {exc}") from exc
        if create:
            self.create()
        return inserted


_SCAN: Final = (
    "SELECT e.notification_id, convert_to(e.originator_id, 'UTF8'), e.originator_version, "
    "convert_to(e.topic, 'UTF8'), e.state, c.seq, c.prev_hash, c.hash "
    f"FROM {EVENTS_TABLE} e LEFT JOIN {CHAIN_TABLE} c ON c.position = e.notification_id "
    "AND c.position > %(after)s AND c.position <= %(upto)s "
    "WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s "
    "ORDER BY e.notification_id LIMIT %(limit)s"
)
_SCAN_TYPES: Final = (
    "SELECT e.notification_id, convert_to(e.originator_id, 'UTF8'), e.originator_version, "
    "convert_to(e.topic, 'UTF8'), e.state, c.seq, c.prev_hash, c.hash "
    f"FROM {EVENTS_TABLE} e LEFT JOIN {CHAIN_TABLE} c ON c.position = e.notification_id "
    "WHERE e.topic = ANY(%s) ORDER BY e.notification_id"
)

_TREE_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {TREE_TABLE} (level integer NOT NULL, idx bigint NOT NULL, "
    "hash bytea NOT NULL, last_position bigint NOT NULL, PRIMARY KEY (level, idx))"
)


class _Listener:
    """A long-lived LISTEN connection for following the log."""

    def __init__(self, store: PostgresStore) -> None:
        self._conn: psycopg.Connection[Any] | None = None
        try:
            self._conn = psycopg.connect(
                **store._args, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
            self._conn.execute(
                psycopg.sql.SQL("LISTEN {}").format(
                    psycopg.sql.Identifier(store.recorder.channel_name)
                )
            )
        except psycopg.Error as exc:
            log.warning("LISTEN unavailable (%s); following by polling", exc)
            self.close()

    def wait(self, timeout: float) -> bool:
        """True when a NOTIFY arrived; on any error it degrades to a plain timeout."""
        if self._conn is None:
            time.sleep(min(timeout, 0.05))
            return False
        try:
            return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as exc:
            log.warning("LISTEN failed (%s); falling back to polling", exc)
            self.close()
            return False

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _not_initialised(url: str) -> StoreNotInitialisedError:
    return StoreNotInitialisedError(f"{url} holds no kei ledger", hint="run `kei init` first")


def _record(r: Any) -> StoredRecord:
    return StoredRecord(
        r["notification_id"], r["originator_id"], r["originator_version"], r["topic"],
        bytes(r["state"]), r["seq"],
        None if r["prev_hash"] is None else bytes(r["prev_hash"]),
        None if r["hash"] is None else bytes(r["hash"]),
    )  # fmt: skip


def _entry(r: Any) -> ChainEntry:
    return ChainEntry(int(r["position"]), int(r["seq"]), bytes(r["prev_hash"]), bytes(r["hash"]))
