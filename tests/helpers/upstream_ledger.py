"""Build upstream kei-ledger databases for import tests, at any schema version 1..9.

The DDL is upstream's own, one entry per migration (KeiSeiKit ``kei-ledger``
``migrations_list.rs``, spec §1.8), applied the way upstream's ``migrate()`` does:
each version in its own transaction together with its ``user_version`` bump.
``migrate(to)`` moves an existing file forward, so rows that only older versions
allow (over-long branches before v3's triggers, duplicate DNAs before v5's unique
index) can be written first and carried into a newer schema, as they would be in
the wild. The v5 duplicate pre-check is left out on purpose: tests build what
upstream would refuse to migrate, to see kei import it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[str, ...] = (
    # v1
    """CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY,
        branch TEXT NOT NULL,
        parent_branch TEXT,
        spec_sha TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running','done','failed','merged','rejected')),
        started_ts INTEGER NOT NULL,
        finished_ts INTEGER,
        summary TEXT,
        worktree_path TEXT
    );
    CREATE INDEX IF NOT EXISTS idx_parent ON agents(parent_branch);
    CREATE INDEX IF NOT EXISTS idx_status ON agents(status);""",
    # v2
    """ALTER TABLE agents ADD COLUMN dna TEXT;
    CREATE INDEX IF NOT EXISTS idx_agents_dna_prefix ON agents(substr(dna, 1, 30));""",
    # v3
    """CREATE TRIGGER IF NOT EXISTS trg_agents_branch_len_ins
     BEFORE INSERT ON agents
     BEGIN
        SELECT RAISE(ABORT, 'branch length exceeds 256')
            WHERE length(NEW.branch) > 256;
        SELECT RAISE(ABORT, 'parent_branch length exceeds 256')
            WHERE NEW.parent_branch IS NOT NULL AND length(NEW.parent_branch) > 256;
     END;
     CREATE TRIGGER IF NOT EXISTS trg_agents_branch_len_upd
     BEFORE UPDATE OF branch, parent_branch ON agents
     BEGIN
        SELECT RAISE(ABORT, 'branch length exceeds 256')
            WHERE length(NEW.branch) > 256;
        SELECT RAISE(ABORT, 'parent_branch length exceeds 256')
            WHERE NEW.parent_branch IS NOT NULL AND length(NEW.parent_branch) > 256;
     END;""",
    # v4
    """ALTER TABLE agents ADD COLUMN creator_id TEXT;
    ALTER TABLE agents ADD COLUMN fork_parent_id TEXT;
    CREATE INDEX IF NOT EXISTS idx_agents_creator ON agents(creator_id);
    CREATE INDEX IF NOT EXISTS idx_agents_fork_parent ON agents(fork_parent_id);""",
    # v5
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_agents_dna_unique ON agents(dna);",
    # v6
    """ALTER TABLE agents ADD COLUMN cost_cents INTEGER DEFAULT 0;
    ALTER TABLE agents ADD COLUMN provider TEXT DEFAULT '';
    ALTER TABLE agents ADD COLUMN model TEXT DEFAULT '';""",
    # v7
    """ALTER TABLE agents ADD COLUMN cost_micro_cents INTEGER DEFAULT 0;
    UPDATE agents SET cost_micro_cents = COALESCE(cost_cents, 0) * 1000000
        WHERE cost_micro_cents IS NULL OR cost_micro_cents = 0;""",
    # v8
    """CREATE TABLE IF NOT EXISTS skill_invocations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        skill_name TEXT NOT NULL,
        ts INTEGER NOT NULL,
        agent_id TEXT,
        success INTEGER NOT NULL CHECK(success IN (0, 1)),
        trajectory_id TEXT,
        duration_ms INTEGER
    );
    CREATE INDEX IF NOT EXISTS idx_skill_invocations_name_ts
        ON skill_invocations(skill_name, ts DESC);
    CREATE INDEX IF NOT EXISTS idx_skill_invocations_success
        ON skill_invocations(skill_name, success);""",
    # v9
    """ALTER TABLE agents ADD COLUMN tokens_in INTEGER;
    ALTER TABLE agents ADD COLUMN tokens_out INTEGER;
    ALTER TABLE agents ADD COLUMN stubs_count INTEGER DEFAULT 0;
    ALTER TABLE agents ADD COLUMN outcome TEXT
        CHECK (outcome IS NULL OR outcome IN ('functional','partial','scaffolding','fail'));
    ALTER TABLE agents ADD COLUMN escalation_depth INTEGER DEFAULT 0;
    ALTER TABLE agents ADD COLUMN task_class_dna TEXT
        GENERATED ALWAYS AS (
            CASE
                WHEN dna IS NULL OR dna = '' THEN NULL
                WHEN length(dna) > 9
                     AND substr(dna, length(dna) - 8, 1) = '-'
                     THEN substr(dna, 1, length(dna) - 9)
                ELSE dna
            END
        ) VIRTUAL;
    CREATE INDEX IF NOT EXISTS idx_agents_task_class
        ON agents(task_class_dna);""",
)
LATEST = len(MIGRATIONS)


class UpstreamLedger:
    """A kei-ledger SQLite file at a chosen schema version, and helpers to fill it."""

    def __init__(self, path: Path, version: int = LATEST) -> None:
        self.path = path
        self.version = 0
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.migrate(version)

    def migrate(self, to: int) -> UpstreamLedger:
        """Apply migrations up to ``to``, each with its user_version bump, as upstream."""
        for target in range(self.version + 1, to + 1):
            self.conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(MIGRATIONS[target - 1]):
                self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {target}")
            self.conn.execute("COMMIT")
            self.version = target
        return self

    def agent(
        self,
        agent_id: str,
        branch: str | None = None,
        *,
        status: str = "running",
        started: int = 1_700_000_000,
        spec_sha: str = "spec",
        **columns: Any,
    ) -> UpstreamLedger:
        """Insert one agents row with only the columns given (and the NOT NULL ones)."""
        row = {
            "id": agent_id,
            "branch": branch if branch is not None else f"agent/{agent_id}",
            "spec_sha": spec_sha,
            "status": status,
            "started_ts": started,
            **columns,
        }
        self._insert("agents", row)
        return self

    def skill(self, name: str, ts: int, *, success: bool = True, **columns: Any) -> UpstreamLedger:
        row = {"skill_name": name, "ts": ts, "success": int(success), **columns}
        self._insert("skill_invocations", row)
        return self

    def update(self, agent_id: str, **columns: Any) -> UpstreamLedger:
        """Change a row in place, as upstream's done/fail/merged/record-cost do."""
        sets = ", ".join(f"{c} = ?" for c in columns)
        self.conn.execute(f"UPDATE agents SET {sets} WHERE id = ?", (*columns.values(), agent_id))
        return self

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.conn.execute(statement, params).fetchall()

    def close(self) -> None:
        self.conn.close()

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers keep their inner semicolons)."""
    out: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                out.append(buffer.strip())
            buffer = ""
    return out
