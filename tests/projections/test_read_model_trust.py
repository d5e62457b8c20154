"""Read models that cannot lie quietly (issue 13, point 4), on SQLite and PostgreSQL.

Every forgery the issue found (a cost updated to $42,000, a merged agent and a ghost
child, a forged memory value, an edited state row, a truncated log tail, deleted rows)
is made behind kei's back, straight in SQL; then each read command must either show
the log's truth and say on stderr that it rebuilt the read model, or report it
(``kei projections verify``, ``kei verify-chain --read-models``: exit 1). Never the
forged value with nothing said.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli_env, in_process, run_sql
from kei.adapters.readmodels.engine import ProjectionEngine
from kei.adapters.readmodels.seal_key import SEAL_FILE, load_or_create
from kei.app import cost_reads
from kei.app.ledger.ledger import Ledger
from kei.projections.agents import Agents
from kei.projections.costs import Costs
from kei.projections.registry import default_projections

REBUILT = "kei: warning: read models rebuilt from the log"
FORGED_MICRO = 4_200_000_000_000  # $42,000

Run = Callable[..., Any]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def kei(store_url: str, home: Path) -> Run:
    """A ledger with root -> kid, one cost each, a memory value, all read models caught
    up and sealed (``kei projections status``)."""
    run = in_process(cli_env(home, store_url))
    run("init")
    run("agent", "fork", "root", "agent/root")
    run("agent", "fork", "kid", "agent/kid", "--parent", "root")
    run("cost", "record", "kid", "--provider", "x", "--model", "y", "--micro-cents", "700")
    run("cost", "record", "root", "--provider", "x", "--model", "y", "--micro-cents", "500")
    run("memory", "write", "policy", "backoff, 5 tries")
    run("projections", "status")
    return run


def pos_col(url: str) -> str:
    return "rowid" if url.startswith("sqlite") else "notification_id"


def truthful_report(kei: Run) -> str:
    result = kei("cost", "report")
    assert "1200" in result.stdout and str(FORGED_MICRO) not in result.stdout
    return str(result.stderr)


def truthful_tree(kei: Run) -> str:
    result = kei("agent", "tree", "root")
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["root", "kid"], result.stdout
    assert "merged" not in result.stdout and "ghost" not in result.stdout
    assert "$420" not in result.stdout
    return str(result.stderr)


def verify_finds(kei: Run, name: str) -> None:
    result = kei("projections", "verify", code=1)
    assert f"{name}\tMISMATCH" in result.stdout
    assert "kei projections rebuild" in result.stderr


# -- the forgeries -------------------------------------------------------------------


def test_a_clean_ledger_verifies_and_reads_quietly(kei: Run) -> None:
    result = kei("projections", "verify")
    assert "MISMATCH" not in result.stdout and result.stdout.count("\tmatched\t") == 8
    assert REBUILT not in truthful_report(kei)
    assert REBUILT not in truthful_tree(kei)
    assert REBUILT not in kei("verify-chain", "--read-models").stderr


def test_no_command_leaves_a_read_model_unsealed(store_url: str, home: Path) -> None:
    """Every command that catches read models up seals them, so a later read never
    takes honest work for an edit (no "rebuilt" warning on a clean ledger)."""
    run = in_process(cli_env(home, store_url))
    run("init")
    steps = [
        ("agent", "fork", "a1", "agent/a1"),
        ("cost", "record", "a1", "--provider", "x", "--model", "y", "--micro-cents", "9"),
        ("skill", "record", "cargo-test", "--success", "--duration-ms", "5"),
        ("skill", "report"),
        ("route", "select", "--dna", "impl::rust::3F2A9C01::7B1E44D0-9a0c11fe"),
        ("posterior", "show"),
        ("memory", "write", "k", "v"),
        ("memory", "get", "k"),
        ("agent", "done", "a1", "--summary", "done"),
        ("cost", "report"),
        ("agent", "tree", "a1"),
        ("projections", "status"),
    ]
    for step in steps:
        assert REBUILT not in run(*step).stderr, step
    assert run("projections", "verify").stdout.count("\tmatched\t") == 8


def test_a_cost_updated_to_42000_dollars(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE costs_events SET micro_cents = ?", (FORGED_MICRO,))
    verify_finds(kei, "costs")
    assert kei("verify-chain", "--read-models", code=1).stdout.count("MISMATCH") == 1
    assert REBUILT in truthful_report(kei)  # corrected, and said so
    assert REBUILT not in truthful_report(kei)  # once
    kei("projections", "verify")


def test_a_cost_forged_is_corrected_by_agent_tree_too(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE costs_events SET micro_cents = ?", (FORGED_MICRO,))
    assert "costs" in truthful_tree(kei)


def test_a_merged_agent_and_a_ghost_child(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE agents_agents SET status = 'merged' WHERE id = 'kid'")
    columns = [r[0] for r in _columns(store_url, "agents_agents")]
    picked = ", ".join("'ghost'" if c == "id" else c for c in columns)
    run_sql(store_url, f"INSERT INTO agents_agents ({', '.join(columns)}) "
            f"SELECT {picked} FROM agents_agents WHERE id = 'kid'")  # fmt: skip
    verify_finds(kei, "agents")
    assert REBUILT in truthful_tree(kei)
    kei("projections", "verify")


def test_a_forged_memory_value(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE memory_items SET value = 'rm -rf /' WHERE key = 'policy'")
    verify_finds(kei, "memory")
    result = kei("memory", "get", "policy")
    assert result.stdout == "backoff, 5 tries\n"
    assert REBUILT in result.stderr


def test_rows_deleted(kei: Run, store_url: str) -> None:
    run_sql(store_url, "DELETE FROM costs_events WHERE agent_id = 'kid'")
    run_sql(store_url, "DELETE FROM agents_agents WHERE id = 'kid'")
    verify_finds(kei, "costs")
    assert REBUILT in truthful_tree(kei)
    assert REBUILT not in truthful_report(kei)


def test_an_edited_state_row(kei: Run, store_url: str) -> None:
    """Moved back to an earlier real event: the next catch-up would fold the events
    after it a second time (every cost counted twice)."""
    before = run_sql(store_url, "SELECT seq, hash FROM kei_chain ORDER BY position")[-2]
    top = run_sql(store_url, "SELECT max(position) FROM kei_chain")[0][0]
    run_sql(
        store_url,
        "UPDATE kei_projections SET position = ?, seq = ?, hash = ? WHERE name = 'costs'",
        (top - 1, *before),
    )
    assert REBUILT in truthful_report(kei)


def test_a_state_row_ahead_of_the_log(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE kei_projections SET position = position + 5")
    verify_finds(kei, "costs")
    assert REBUILT in truthful_report(kei)


def test_the_seal_removed_or_copied(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE costs_events SET micro_cents = ?", (FORGED_MICRO,))
    run_sql(store_url, "DELETE FROM kei_projection_seals WHERE name = 'costs'")
    assert REBUILT in truthful_report(kei)
    # The agents' seal put in place of the costs' one: a seal names its projection.
    run_sql(store_url, "DELETE FROM kei_projection_seals WHERE name = 'costs'")
    run_sql(store_url, "INSERT INTO kei_projection_seals (name, position, mac) "
            "SELECT 'costs', position, mac FROM kei_projection_seals WHERE name = 'agents'")  # fmt: skip
    assert REBUILT in truthful_report(kei)


def test_a_truncated_log_tail_is_never_skipped(kei: Run, store_url: str) -> None:
    """The last event (root's cost) cut from the log; the next event takes its position.
    The read models stood there: they are rebuilt, and the new event is folded."""
    top = run_sql(store_url, "SELECT max(position) FROM kei_chain")[0][0]
    memory_event = top  # `memory write` was the last append
    run_sql(store_url, f"DELETE FROM kei_events WHERE {pos_col(store_url)} = ?", (memory_event,))
    run_sql(store_url, "DELETE FROM kei_chain WHERE position = ?", (memory_event,))
    recorded = kei("cost", "record", "kid", "--provider", "x", "--model", "y",
                   "--micro-cents", "1")  # fmt: skip
    result = kei("cost", "report")
    assert "1201" in result.stdout  # the new cost counted, nothing skipped
    assert REBUILT in result.stderr or REBUILT in recorded.stderr
    found = kei("projections", "verify", code=1).stdout  # the read models nobody read yet
    assert "memory\tMISMATCH" in found and "costs\tmatched" in found
    assert REBUILT in kei("memory", "get", "policy", code=1).stderr  # the write is gone
    kei("projections", "status")
    kei("projections", "verify")


def test_without_a_key_the_log_is_still_checked(kei: Run, store_url: str) -> None:
    """A library caller without the seal key: edited rows go unnoticed (stated in the
    docs), a state row the log does not hold is still rebuilt."""
    run_sql(store_url, "UPDATE kei_projections SET position = position + 5")
    with Ledger.open(store_url) as ledger:
        assert not cost_reads.is_fresh(ledger.store)
        cost_reads.caught_up(ledger)
        assert cost_reads.is_fresh(ledger.store)
        report = cost_reads.report(ledger.store, "agent", _catalog())
    assert report.total == 1200


def test_a_reset_state_row_with_forged_rows_is_caught_by_the_seal(kei: Run, store_url: str) -> None:
    run_sql(store_url, "UPDATE kei_projections SET position = 0, seq = NULL, hash = NULL "
            "WHERE name = 'costs'")  # fmt: skip
    run_sql(store_url, "DELETE FROM kei_projection_seals WHERE name = 'costs'")
    assert REBUILT in truthful_report(kei)


# -- the engine and the key ----------------------------------------------------------


def test_the_engine_rebuilds_and_reseals(store_url: str, kei: Run, home: Path) -> None:
    key = load_or_create(home)
    run_sql(store_url, "UPDATE costs_events SET micro_cents = ?", (FORGED_MICRO,))
    with Ledger.open(store_url) as ledger:
        engine = ProjectionEngine(store_url, ledger.store, [Agents(), Costs()], seal_key=key)
        try:
            engine.catch_up()
            assert engine.digest("costs") == _fold_digest(ledger, "costs", tmp=home)
            other = ProjectionEngine(store_url, ledger.store, [Costs()], seal_key=b"x" * 32)
            try:  # another key: the seal does not match, so it rebuilds (same rows)
                other.catch_up()
                assert other.digest("costs") == engine.digest("costs")
            finally:
                other.close()
        finally:
            engine.close()


def test_the_seal_key_is_private_and_stable(tmp_path: Path) -> None:
    home = tmp_path / "h"
    key = load_or_create(home)
    assert len(key) == 32 and load_or_create(home) == key
    assert (home / SEAL_FILE).stat().st_mode & 0o777 == 0o600
    (home / SEAL_FILE).write_bytes(b"short")
    from kei.errors import KeyFileError

    with pytest.raises(KeyFileError, match="holds 5 bytes"):
        load_or_create(home)


def test_a_bad_seal_key_file_is_one_line(kei: Run, home: Path) -> None:
    (home / SEAL_FILE).write_bytes(b"short")
    result = kei("cost", "report", code=None)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "seal key" in result.stderr


# -- helpers ---------------------------------------------------------------------------


def _columns(url: str, table: str) -> list[Any]:
    if url.startswith("sqlite"):
        return [(r[1],) for r in run_sql(url, f"PRAGMA table_info({table})")]
    return run_sql(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        (table,),
    )


def _catalog() -> Any:
    from kei.adapters.files.catalog import load_catalog

    return load_catalog(None)


def _fold_digest(ledger: Ledger, name: str, *, tmp: Path) -> bytes:
    chosen = [p for p in default_projections() if p.name == name]
    engine = ProjectionEngine(f"sqlite:///{tmp / 'fold.db'}", ledger.store, chosen, scratch=True)
    try:
        engine.catch_up()
        return engine.digest(name)
    finally:
        engine.close()


def test_parallel_sealed_commands_never_take_each_other_for_forgers(
    kei: Run, store_url: str, home: Path
) -> None:
    """Four processes recording costs and four reading reports at once: every keyed
    catch-up checks, folds and re-seals under the sealer lock, so none sees another's
    rows ahead of their seal, and nothing is rebuilt."""
    env = cli_env(home, store_url)
    record = ["cost", "record", "kid", "--provider", "x", "--model", "y", "--micro-cents", "1"]
    procs = [
        subprocess.Popen([sys.executable, "-m", "kei", *args], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in [record, ["cost", "report"]] * 4
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert REBUILT not in err
        assert p.returncode in (0, 2), err  # 2: the optimistic-concurrency race of issue 13.3
    kei("projections", "verify")
    assert REBUILT not in kei("cost", "report").stderr


FORGERIES = {
    "cost": "UPDATE costs_events SET micro_cents = micro_cents * 1000",
    "cost-row-gone": "DELETE FROM costs_events WHERE agent_id = 'root'",
    "agent-merged": "UPDATE agents_agents SET status = 'merged'",
    "agent-gone": "DELETE FROM agents_agents WHERE id = 'kid'",
    "state-back": "UPDATE kei_projections SET position = position - 1",
    "state-ahead": "UPDATE kei_projections SET position = position + 1",
    "state-zero": "UPDATE kei_projections SET position = 0, seq = NULL, hash = NULL",
    "seals-gone": "DELETE FROM kei_projection_seals",
    "seal-moved": "UPDATE kei_projection_seals SET position = position - 1",
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=st.lists(st.sampled_from(sorted(FORGERIES)), min_size=1, max_size=4, unique=True))
def test_any_mix_of_forgeries_reads_the_truth(
    chosen: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Property: whatever mix of edits is made behind kei's back, `cost report` and
    `agent tree` answer the log's truth, and afterwards every read model verifies."""
    home = tmp_path_factory.mktemp("mix")
    url = f"sqlite:///{home / 'ledger.db'}"
    run = in_process(cli_env(home, url))
    run("init")
    run("agent", "fork", "root", "agent/root")
    run("agent", "fork", "kid", "agent/kid", "--parent", "root")
    run("cost", "record", "kid", "--provider", "x", "--model", "y", "--micro-cents", "700")
    run("cost", "record", "root", "--provider", "x", "--model", "y", "--micro-cents", "500")
    truthful_report(run)  # writes decide from streams: a read builds the read models
    truthful_tree(run)
    for name in chosen:
        run_sql(url, FORGERIES[name])
    truthful_report(run)
    truthful_tree(run)
    run("projections", "status")
    run("projections", "verify")


@pytest.mark.parametrize("into", ["new", "extend"])
def test_replayed_read_models_are_sealed(kei: Run, home: Path, tmp_path: Path, into: str) -> None:
    """After `kei replay` (into a new file, and onto a store that holds the first
    events) the target's read models are sealed with this KEI_HOME's key: the next read
    trusts them, no "rebuilt" warning."""
    target = tmp_path / "target.db"
    if into == "extend":
        early = tmp_path / "early.tar.zst"
        kei("hibernate", "export", "--out", str(early))
        kei("replay", str(early), "--db", str(target))
        kei("cost", "record", "root", "--provider", "x", "--model", "y", "--micro-cents", "1")
    bundle = tmp_path / "b.tar.zst"
    kei("hibernate", "export", "--out", str(bundle))
    kei("replay", str(bundle), "--db", str(target))
    for args in (("cost", "report"), ("agent", "tree", "root"), ("memory", "get", "policy")):
        result = kei("--db", str(target), *args)
        assert REBUILT not in result.stderr, (args, result.stderr)


def test_imported_read_models_are_sealed(kei: Run, tmp_path: Path) -> None:
    """The same after `kei events import` into a new store."""
    lines = tmp_path / "log.jsonl"
    kei("events", "export", "--format", "jsonl", "--out", str(lines))
    target = tmp_path / "imported.db"
    kei("--db", str(target), "events", "import", str(lines))
    for args in (("cost", "report"), ("agent", "tree", "root")):
        result = kei("--db", str(target), *args)
        assert REBUILT not in result.stderr, (args, result.stderr)
