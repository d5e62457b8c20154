"""The plan and the four-way comparison, on hand-made observations: what is pending,
out of order, missing or partial; which source moved when files, tracker table, log
and schema disagree; and that a drift already in the log is not recorded twice."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.domain.events.migrate import (
    MigrationApplied,
    MigrationDrift,
    MigrationFailed,
    MigrationResolved,
    MigrationReverted,
    MigrationStarted,
)
from kei.domain.migrate.drift import disagreements
from kei.domain.migrate.history import History, fold
from kei.domain.migrate.plan import Observation, down_plan, entries, out_of_order, pending
from kei.domain.migrate.scripts import IRREVERSIBLE, Script, SqlFile
from kei.domain.migrate.tracker import StartedRow, TrackerRow
from kei.errors import InputError, MigrationError

T = "sqlite:////x.db"


def script(version: int, up: str = "up", down: str | None = "down") -> Script:
    up_file = SqlFile.read(f"{version}_m{version}.sql", up.encode())
    down_file = None if down is None else SqlFile.read(f"{version}_m{version}.down.sql",
                                                       down.encode())  # fmt: skip
    return Script(version, f"m{version}", up_file, down_file)


def row(s: Script, checksum: str | None = None, name: str | None = None) -> TrackerRow:
    return TrackerRow(s.version, name or s.name, checksum or s.up.sha256, "2026-01-01T00:00:00Z")


def applied(s: Script, schema: str | None = "S1") -> MigrationApplied:
    return MigrationApplied(
        target=T,
        version=s.version,
        name=s.name,
        up_sha256=s.up.sha256,
        down_sha256=s.down_sha256,
        schema_after_sha256=schema,
    )


def log(*payloads: object) -> History:
    return fold((i + 1, "k", p) for i, p in enumerate(payloads))  # type: ignore[arg-type]


def obs(scripts: list[Script], rows: list[TrackerRow], history: History | None = None,
        schema: str = "S1", started: list[StartedRow] | None = None) -> Observation:  # fmt: skip
    return Observation(scripts, rows, started or [], schema, history)


def test_entries_pending_out_of_order_missing_partial() -> None:
    s1, s2, s3, s5 = script(1), script(2), script(3), script(5)
    gone = TrackerRow(4, "m4", "c", "t")
    o = obs([s1, s2, s3, s5], [row(s1), row(s3), gone],
            started=[StartedRow(5, "m5", "up", s5.up.sha256, "t")])  # fmt: skip
    states = {e.version: (e.state, e.out_of_order) for e in entries(o)}
    assert states == {
        1: ("applied", False),
        2: ("pending", True),
        3: ("applied", False),
        4: ("missing-file", False),
        5: ("partial", False),
    }
    assert [s.version for s in pending(o)] == [2]
    assert [s.version for s in out_of_order(o)] == [2]


def test_down_plan_checks_every_version_first() -> None:
    s1, s2, s3 = script(1), script(2, down=f"DROP x;\n{IRREVERSIBLE}\n"), script(3)
    o = obs([s1, s2, s3], [row(s1), row(s2), row(s3)])
    assert [s.version for _, s in down_plan(o, 1)] == [3]
    with pytest.raises(MigrationError, match="irreversible"):
        down_plan(o, 2)
    no_down = script(4, down=None)
    with pytest.raises(InputError, match="no down file"):
        down_plan(obs([no_down], [row(no_down)]), 1)
    with pytest.raises(InputError, match="not in the folder"):
        down_plan(obs([], [row(s1)]), 1)


def test_all_agree() -> None:
    s1 = script(1)
    assert disagreements(obs([s1], [row(s1)], log(applied(s1)))) == []


def kinds(o: Observation) -> list[tuple[str, int | None]]:
    return [(d.drift, d.version) for d in disagreements(o)]


def test_an_edited_file_is_told_from_an_edited_row_by_the_log() -> None:
    s1 = script(1)
    edited = script(1, up="up, edited")
    history = log(applied(s1))
    assert kinds(obs([edited], [row(s1)], history)) == [("file-edited", 1)]
    assert kinds(obs([s1], [row(s1, checksum="f" * 64)], history)) == [("tracker-edited", 1)]
    # both edited to agree: upstream's two-way check passes, the log does not
    both = obs([edited], [row(s1, checksum=edited.up.sha256)], history)
    assert kinds(both) == [("file-edited", 1), ("tracker-edited", 1)]
    assert kinds(obs([s1], [row(s1, name="renamed")], history)) == [("tracker-edited", 1)]


def test_without_a_log_the_tracker_row_is_the_reference_as_upstream() -> None:
    s1 = script(1)
    assert kinds(obs([script(1, up="x")], [row(s1)], None)) == [("file-edited", 1)]


def test_rows_deleted_added_files_missing_schema_changed() -> None:
    s1, s2 = script(1), script(2)
    history = log(applied(s1), applied(s2, schema="S2"))
    assert kinds(obs([s1, s2], [row(s1)], history, schema="S2")) == [("row-deleted", 2)]
    assert kinds(obs([s1, s2], [row(s1), row(s2)], log(applied(s1)))) == [("row-added", 2)]
    assert kinds(obs([s1], [row(s1), row(s2)], history, schema="S2")) == [("file-missing", 2)]
    assert kinds(obs([s1, s2], [row(s1), row(s2)], history, schema="S9")) == [
        ("schema-changed", None)
    ]
    reverted = log(applied(s1), MigrationReverted(target=T, version=1, name="m1", down_sha256="d"))
    assert kinds(obs([s1], [row(s1)], reverted)) == [("row-added", 1)]


def test_an_edited_down_file_is_reported_not_blocking() -> None:
    s1 = script(1)
    found = disagreements(obs([script(1, down="other")], [row(s1)], log(applied(s1))))
    assert [(d.drift, d.blocking) for d in found] == [("down-file-edited", False)]


def test_a_killed_run_is_not_a_drift_until_reconciled() -> None:
    s1 = script(1)
    claim = MigrationStarted(
        target=T, version=1, name="m1", direction="up", up_sha256=s1.up.sha256,
        schema_before_sha256="S0",
    )  # fmt: skip
    history = log(claim)
    assert set(history.open) == {1}
    assert kinds(obs([s1], [row(s1)], history)) == []


def test_the_fold() -> None:
    s1, s2 = script(1), script(2)
    start = MigrationStarted(target=T, version=2, name="m2", direction="up",
                             schema_before_sha256="S1")  # fmt: skip
    failed = MigrationFailed(target=T, version=2, name="m2", direction="up", phase="run",
                             partial=True)  # fmt: skip
    resolved = MigrationResolved(target=T, version=2, name="m2", direction="up",
                                 resolution="completed", up_sha256=s2.up.sha256,
                                 schema_after_sha256="S3")  # fmt: skip
    drift = MigrationDrift(target=T, drift="schema-changed", recorded_sha256="S1",
                           actual_sha256="S2")  # fmt: skip
    h = log(applied(s1), drift, start, failed, resolved)
    assert h.stream_version == 5
    assert set(h.applied()) == {1, 2}
    assert h.open == {}
    assert h.schema == "S3"
    assert ("schema-changed", None, "S1", "S2") in h.drifts


@given(
    on_disk=st.sets(st.integers(1, 30), max_size=12),
    applied=st.sets(st.integers(1, 30), max_size=12),
)
def test_every_version_has_exactly_one_state(on_disk: set[int], applied: set[int]) -> None:
    scripts = [script(v) for v in sorted(on_disk)]
    rows = [TrackerRow(v, f"m{v}", script(v).up.sha256, "t") for v in sorted(applied)]
    o = obs(scripts, rows)
    listed = entries(o)
    assert [e.version for e in listed] == sorted(on_disk | applied)
    assert {s.version for s in pending(o)} == on_disk - applied
    newest = max(applied, default=0)
    assert {s.version for s in out_of_order(o)} == {v for v in on_disk - applied if v < newest}
    missing = {e.version for e in listed if e.state == "missing-file"}
    assert missing == applied - on_disk
    assert {d.version for d in disagreements(o)} == missing  # no log: only files vs rows
