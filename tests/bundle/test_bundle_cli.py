"""``kei hibernate export|inspect|import`` and ``kei replay``, run as a user runs them."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from bundle_helpers import snapshot
from cli_helpers import cli_env, kei
from hostile_bundles import CASES, pack, unpack
from kei.adapters.cli.commands.replay_cmd import collector_paused
from kei.adapters.files.keyfile import write_key
from kei.domain.log.keys import SigningKey
from kei.projections.registry import default_projections


@pytest.fixture
def home(tmp_path: Path, store_url: str) -> Path:
    """An initialised ledger (on both stores) with a few agent events."""
    home = tmp_path / "home"
    env = cli_env(home, store_url)
    assert kei(["init", "--name", "cli"], env).returncode == 0
    for agent in ("a", "b"):
        assert kei(["agent", "fork", agent, f"feat/{agent}"], env).returncode == 0
    return home


def test_export_inspect_and_replay(home: Path, store_url: str, tmp_path: Path) -> None:
    env = cli_env(home, store_url)
    bundle = tmp_path / "brain.tar.zst"
    done = kei(["hibernate", "export", "--out", str(bundle), "--level", "5"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"kei: wrote {bundle}:" in done.stderr
    shown = kei(["hibernate", "inspect", str(bundle)], env)
    assert shown.returncode == 0, shown.stdout
    assert "format: kei-bundle v1" in shown.stdout and "problems: none" in shown.stdout
    data = json.loads(kei(["hibernate", "inspect", str(bundle), "--json"], env).stdout)
    assert data["ok"] and data["manifest"]["events"] == data["events_read"]

    target = tmp_path / "restored.db"
    out = kei(["replay", str(bundle), "--db", str(target)], env)
    assert out.returncode == 0, out.stderr
    assert "restored the ledger into an empty store" in out.stdout
    n = len(default_projections())
    assert f"digests: {n} of {n} matched" in out.stdout
    again = kei(["hibernate", "import", "--from", str(bundle), "--db", str(target), "--json"], env)
    report = json.loads(again.stdout)
    assert (report["ok"], report["mode"], report["appended"]) == (True, "prefix", 0)
    restored = cli_env(home, f"sqlite:///{target}")
    assert kei(["verify-chain"], restored).returncode == 0


def test_dry_run_writes_nothing(home: Path, store_url: str, tmp_path: Path) -> None:
    env = cli_env(home, store_url)
    bundle = tmp_path / "brain.tar.zst"
    assert kei(["hibernate", "export", "-o", str(bundle)], env).returncode == 0
    target = tmp_path / "nothing.db"
    out = kei(["hibernate", "import", "--from", str(bundle), "--db", str(target), "--dry-run"], env)
    assert out.returncode == 0, out.stderr
    assert "dry run, nothing written" in out.stdout
    assert not target.exists()


@pytest.mark.parametrize(
    "case", ["climbing-path", "symlink", "hash-differs", "signed-by-unknown-key"]
)
def test_a_hostile_bundle_is_one_line_exit_1_and_nothing_written(
    case: str, home: Path, store_url: str, tmp_path: Path
) -> None:
    env = cli_env(home, store_url)
    bundle = tmp_path / "brain.tar.zst"
    assert kei(["hibernate", "export", "-o", str(bundle)], env).returncode == 0
    builder, _ = CASES[case]
    bad = pack(tmp_path / "bad.tar.zst", builder(unpack(bundle), SigningKey.generate()))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    before = snapshot(target)
    out = kei(["replay", str(bad), "--db", target], env)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0].startswith("kei: error: ") and len(lines) == 2, out.stderr
    assert lines[1] == "kei: hint: nothing was written; the bundle cannot be used as it is"
    assert "Traceback" not in out.stderr
    assert snapshot(target) == before
    assert kei(["hibernate", "inspect", str(bad)], env).returncode == 1


def test_missing_bundle_is_a_usage_error(home: Path, store_url: str, tmp_path: Path) -> None:
    out = kei(["replay", str(tmp_path / "nope.tar.zst")], cli_env(home, store_url))
    assert out.returncode == 2
    assert out.stderr.startswith("kei: error: cannot read bundle")


def test_export_needs_an_existing_ledger(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", f"sqlite:///{tmp_path / 'none.db'}")
    write_key(tmp_path / "home" / "keys" / "default.key", SigningKey.generate())
    out = kei(["hibernate", "export", "--out", str(tmp_path / "b.tar.zst")], env)
    assert out.returncode == 3
    assert not (tmp_path / "b.tar.zst").exists()


@pytest.mark.parametrize("enabled", [True, False])
def test_replay_pauses_the_cycle_collector_and_restores_it(enabled: bool) -> None:
    """Off for the replay, then as it was, even when the replay fails."""
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(RuntimeError), collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("refused")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
