"""Read an upstream kei-ledger SQLite database (schema v1–v9) into plain rows.

The file is opened read-only (``mode=ro``) and never migrated or written: an
import must not change the history it carries over. The schema is taken from
``PRAGMA user_version`` and, column by column, from what the ``agents`` table
actually holds, so a database at any version reads with the columns it has and
``None`` for the rest. Everything is read in one read transaction (one consistent
snapshot). SQLite stores any value in any column, so values are coerced
(``upstream_values.py``): text stays text, integers stay integers, anything else in
an integer column reads as ``None``, and a time that is not one of the known forms
is kept as ``Unreadable`` for the report to name (never read as 1970).

Every other table is counted (``other_tables``), so the report can name what the
import does not carry; the rows of kei-prune's ``prune_retirements`` sidecar are read
(``retirements``) so each one is named with its agent.

Refusals are one-line ``InputError``s naming ``label`` (the path, or a bundle entry
the caller copied out): a missing file, a file that is not SQLite, a database without
an ``agents`` table, a schema newer than v9.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Final

from msgspec import Struct

from kei.app.importers.upstream_values import Unreadable, integer, seconds, text
from kei.errors import InputError

MAX_SCHEMA: Final = 9
US: Final = 1_000_000  # upstream times are unix seconds, kei's are microseconds
AGENT_COLUMNS: Final = (
    "id", "branch", "parent_branch", "spec_sha", "status", "started_ts", "finished_ts",
    "summary", "worktree_path", "dna", "creator_id", "fork_parent_id", "cost_cents",
    "provider", "model", "cost_micro_cents", "tokens_in", "tokens_out", "stubs_count",
    "outcome", "escalation_depth",
)  # fmt: skip
_INTS: Final = frozenset(
    {
        "cost_cents", "cost_micro_cents", "tokens_in", "tokens_out", "stubs_count",
        "escalation_depth",
    }
)  # fmt: skip
_TIMES: Final = frozenset({"started_ts", "finished_ts"})
CARRIED: Final = frozenset({"agents", "skill_invocations", "sqlite_sequence"})
RETIREMENTS: Final = "prune_retirements"
REQUIRED: Final = ("id", "branch", "status", "started_ts")
SKILL_COLUMNS: Final = (
    "id", "skill_name", "ts", "agent_id", "success", "trajectory_id", "duration_ms",
)  # fmt: skip


class UpstreamAgent(Struct, frozen=True):
    """One ``agents`` row; columns the schema lacks are ``None``."""

    rowid: int
    id: str
    branch: str
    status: str
    started_ts: int
    parent_branch: str | None = None
    spec_sha: str | None = None
    finished_ts: int | None = None
    summary: str | None = None
    worktree_path: str | None = None
    dna: str | None = None
    creator_id: str | None = None
    fork_parent_id: str | None = None
    cost_cents: int | None = None
    provider: str | None = None
    model: str | None = None
    cost_micro_cents: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    stubs_count: int | None = None
    outcome: str | None = None
    escalation_depth: int | None = None
    unreadable: tuple[Unreadable, ...] = ()
    origin_ref: str = ""  # set by ``namespaces.py``: the row ref in its namespace

    @property
    def ref(self) -> str:
        """The upstream row, as reports and ``Origin.ref`` name it."""
        if self.origin_ref:
            return self.origin_ref
        return f"agents/{self.id}" if self.id else f"agents/rowid:{self.rowid}"

    def unreadable_of(self, column: str) -> Unreadable | None:
        return next((u for u in self.unreadable if u.column == column), None)

    @property
    def ended_ts(self) -> int:
        """When it finished upstream, else when it started."""
        return self.started_ts if self.finished_ts is None else self.finished_ts


class UpstreamSkill(Struct, frozen=True):
    """One ``skill_invocations`` row (v8+)."""

    id: int
    skill_name: str
    ts: int
    success: bool
    agent_id: str | None = None
    trajectory_id: str | None = None
    duration_ms: int | None = None
    unreadable: Unreadable | None = None
    origin_ref: str = ""  # set by ``namespaces.py``: the row ref in its namespace

    @property
    def ref(self) -> str:
        return self.origin_ref or f"skill_invocations/{self.id}"


class Upstream(Struct, frozen=True):
    """Everything an import reads, in import order."""

    path: str
    schema_version: int
    columns: frozenset[str]
    agents: list[UpstreamAgent]
    skills: list[UpstreamSkill]
    other_tables: dict[str, int] = {}
    retirements: list[tuple[str, str]] = []


def read_upstream(path: Path, label: str | None = None) -> Upstream:
    """Read ``path`` read-only; refuse, in one line, anything that is not kei-ledger v1–v9."""
    shown = label or str(path)
    if not path.exists():
        raise InputError(f"{shown}: no such file; give the path of a kei-ledger database")
    if not path.is_file():
        raise InputError(f"{shown} is not a file; give the path of a kei-ledger database")
    with _snapshot(path, shown) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "agents" not in tables:
            raise InputError(f"{shown} is not a kei-ledger database (it has no agents table)")
        if version > MAX_SCHEMA:
            raise InputError(
                f"{shown}: schema v{version} is newer than the v1–v{MAX_SCHEMA} kei can import"
            )
        present = {r[1] for r in conn.execute("PRAGMA table_info(agents)")}
        missing = [c for c in REQUIRED if c not in present]
        if missing:
            raise InputError(
                f"{shown} is not a kei-ledger database (its agents table has no "
                f"{', '.join(missing)} column)"
            )
        agents = list(_agents(conn, present))
        skills = list(_skills(conn)) if "skill_invocations" in tables else []
        others = {t: _count(conn, t) for t in sorted(tables - CARRIED) if not _internal(t)}
        retired = list(_retirements(conn)) if RETIREMENTS in tables else []
    return Upstream(shown, version, frozenset(present), agents, skills, others, retired)


def has_agents(path: Path) -> bool:
    """Does the SQLite file at ``path`` look like a kei-ledger database (an ``agents``
    table)? False for any other file, readable or not."""
    try:
        with _snapshot(path, str(path)) as conn:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='agents'"
            ).fetchone()
    except InputError:
        return False
    return found is not None


def _internal(table: str) -> bool:
    return table.startswith("sqlite_")


def _count(conn: sqlite3.Connection, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    return int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])


def _retirements(conn: sqlite3.Connection) -> Iterator[tuple[str, str]]:
    """kei-prune's sidecar rows (agent_id, retired_ts), as text, in agent order."""
    present = {r[1] for r in conn.execute(f"PRAGMA table_info({RETIREMENTS})")}
    cols = [c if c in present else "NULL" for c in ("agent_id", "retired_ts")]
    query = f"SELECT {', '.join(cols)} FROM {RETIREMENTS} ORDER BY 1"
    for agent_id, when in conn.execute(query):
        yield text(agent_id) or "", text(when) or "NULL"


@contextmanager
def _snapshot(path: Path, shown: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection inside one read transaction; driver errors become one line."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            conn.execute("BEGIN")
            yield conn
            conn.rollback()
    except sqlite3.Error as exc:
        raise InputError(f"{shown} is not a readable SQLite database ({exc})") from exc


def _agents(conn: sqlite3.Connection, present: set[str]) -> Iterator[UpstreamAgent]:
    wanted = [c for c in AGENT_COLUMNS if c in present]
    query = f"SELECT rowid, {', '.join(wanted)} FROM agents ORDER BY started_ts, rowid"
    for row in conn.execute(query):
        values: dict[str, Any] = {}
        unreadable: list[Unreadable] = []
        for column, value in zip(wanted, row[1:], strict=True):
            if column in _TIMES and (value is not None or column == "started_ts"):
                when = seconds(column, value)
                if isinstance(when, Unreadable):
                    unreadable.append(when)
                values[column] = None if isinstance(when, Unreadable) else when
            else:
                values[column] = integer(value) if column in _INTS else text(value)
        yield UpstreamAgent(
            rowid=int(row[0]),
            id=values.pop("id") or "",
            branch=values.pop("branch") or "",
            status=values.pop("status") or "",
            started_ts=values.pop("started_ts") or 0,
            unreadable=tuple(unreadable),
            **values,
        )


def _skills(conn: sqlite3.Connection) -> Iterator[UpstreamSkill]:
    present = {r[1] for r in conn.execute("PRAGMA table_info(skill_invocations)")}
    cols = [c if c in present else "NULL" for c in SKILL_COLUMNS]
    for row in conn.execute(f"SELECT {', '.join(cols)} FROM skill_invocations ORDER BY id"):
        sid, name, ts, agent, success, trajectory, duration = row
        when = seconds("ts", ts)
        yield UpstreamSkill(
            id=integer(sid) or 0,
            skill_name=text(name) or "",
            ts=0 if isinstance(when, Unreadable) else when,
            success=bool(integer(success)),
            agent_id=text(agent),
            trajectory_id=text(trajectory),
            duration_ms=integer(duration),
            unreadable=when if isinstance(when, Unreadable) else None,
        )
