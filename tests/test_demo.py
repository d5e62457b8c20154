"""``kei demo``: runs end to end, catches its own tampering, never touches the user's ledger."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from cli_helpers import cli_env, kei
from kei.adapters.cli.app import app
from kei.adapters.store import open_store
from kei.adapters.verification import verify_store


def test_demo_exits_0_and_reports_the_tampering(tmp_path: Path) -> None:
    home = tmp_path / "user-home"
    result = CliRunner().invoke(app, ["demo"], env=cli_env(home, f"sqlite:///{home}/mine.db"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "chain and signatures OK" in out
    tampered = re.search(r"flipped one bit of byte \d+ of position (\d+)", out)
    assert tampered, out
    position = tampered.group(1)
    assert f"position {position}: content-changed" in out
    assert f"position {position}: bad-signature" in out
    assert "tampering caught" in out
    assert not home.exists()  # the user's KEI_HOME and KEI_DB were left alone


def test_demo_tails_every_kind_of_event(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"], env=cli_env(tmp_path / "h"))
    for kind in ("kei.ledger.genesis", "agent.forked", "cost.recorded", "agent.failed",
                 "agent.completed", "agent.merged", "kei.key.added", "kei.key.revoked"):  # fmt: skip
        assert kind in result.stdout
    assert "parent_agent_id=planner" in result.stdout


def test_demo_keep_leaves_a_ledger_that_verifies_clean(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    result = CliRunner().invoke(app, ["demo", "--keep", str(kept)], env=cli_env(tmp_path / "h"))
    assert result.exit_code == 0, result.output
    assert (kept / "keys" / "default.key").exists() and (kept / "keys" / "bootstrap.key").exists()
    store = open_store(f"sqlite:///{kept / 'ledger.db'}")
    try:
        assert verify_store(store).ok
    finally:
        store.close()
    copy = open_store(f"sqlite:///{kept / 'tampered.db'}")
    try:
        assert {f.kind.value for f in verify_store(copy).findings} == {
            "content-changed",
            "bad-signature",
        }
    finally:
        copy.close()


def test_demo_keep_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "ledger.db").write_bytes(b"precious")
    proc = kei(["demo", "--keep", str(tmp_path / "busy")], cli_env(tmp_path / "h"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("kei: error:") and "Traceback" not in proc.stderr
    assert (tmp_path / "busy" / "ledger.db").read_bytes() == b"precious"


def test_demo_runs_as_a_real_process(tmp_path: Path) -> None:
    proc = kei(["demo"], cli_env(tmp_path / "h"))
    assert proc.returncode == 0, proc.stderr
    assert "tampering caught" in proc.stdout
    assert proc.stderr == ""
