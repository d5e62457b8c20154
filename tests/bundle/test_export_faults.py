"""Export on full disks, and export of a store whose read-model tables were edited.

Full disks are real: a small tmpfs mounted for the test (root only; skipped, saying
so, where mounting is not allowed). Export writes nothing into the store and signs
only digests it folded from the log itself.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundle_helpers import fill
from cli_helpers import cli_env, kei, run_sql
from kei import Ledger
from kei.adapters.files.keyfile import load_key

COMMANDS = {
    "bundle": ["hibernate", "export", "--out"],
    "checkpoint": ["checkpoint", "--out"],
    "jsonl": ["events", "export", "--out"],
}


def _mount(folder: Path, size: str) -> None:
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem of its own, unmounted afterwards."""
    folder = tmp_path / "small"
    _mount(folder, "1m")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path) -> None:
    """Write zeros into ``folder`` until its filesystem has no block left."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def make_home(home: Path, events: int, url: str | None = None) -> dict[str, str]:
    env = cli_env(home, url)
    assert kei(["init", "--name", "full"], env).returncode == 0
    ledger = Ledger.open(
        url or f"sqlite:///{home / 'ledger.db'}", key=load_key(home / "keys" / "default.key")
    )
    try:
        fill(ledger, events)
    finally:
        ledger.close()
    return env


def store_files(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.glob("ledger.db*"))}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("room", ["none", "some"])
def test_a_full_target_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, small_disk: Path, command: str, room: str
) -> None:
    """No room at all, or room for part of the output (a 2,000-event log exports
    to about 230 kB, the jsonl to more; the checkpoint is tiny, so 'some' room
    writes it)."""
    home = tmp_path / "home"
    env = make_home(home, 2000)
    before = store_files(home)
    fill_disk(small_disk)
    if room == "some":
        (small_disk / "filler").unlink()
        (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 96 * 1024))
    target = small_disk / "out"
    done = kei([*COMMANDS[command], str(target)], env)
    if command == "checkpoint" and room == "some":
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "out"]
        return
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("kei: error: ") and "disk is full" in done.stderr
    assert len(done.stderr.splitlines()) == 2  # the error and its hint
    assert [p.name for p in small_disk.iterdir()] == ["filler"]
    assert store_files(home) == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_full_target_disk_with_a_postgres_store(
    tmp_path: Path, small_disk: Path, pg_url: str, command: str
) -> None:
    env = make_home(tmp_path / "home", 2000, pg_url)
    count = run_sql(pg_url, "SELECT count(*) FROM kei_events")
    fill_disk(small_disk)
    done = kei([*COMMANDS[command], str(small_disk / "out")], env)
    assert done.returncode == 2 and "disk is full" in done.stderr, done.stderr
    assert [p.name for p in small_disk.iterdir()] == ["filler"]
    assert run_sql(pg_url, "SELECT count(*) FROM kei_events") == count


def test_export_from_a_store_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    """The store's disk is full; the bundle goes to another disk, and replays.

    SQLite needs a 32 KiB ``-shm`` file beside a WAL store to read it; it exists while
    any process has the store open (an orchestrator's does), so a reader holds it open
    here. Export neither catches up nor reads the store's read models: the old export
    failed here, trying to write them into the full store.
    """
    home = small_disk / "home"
    env = make_home(home, 2000)
    holder = sqlite3.connect(home / "ledger.db")
    try:
        holder.execute("SELECT count(*) FROM kei_events").fetchone()
        fill_disk(small_disk)
        before = store_files(home)
        bundle = tmp_path / "brain.tar.zst"
        done = kei(["hibernate", "export", "--out", str(bundle)], env)
        assert done.returncode == 0, done.stderr
        assert store_files(home) == before
    finally:
        holder.close()
    restored = tmp_path / "restored.db"
    replayed = kei(["replay", str(bundle), "--db", str(restored)], env)
    assert replayed.returncode == 0, replayed.stderr
    assert "digests: 8 of 8 matched" in replayed.stdout


def test_export_from_an_idle_store_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    """No process holds the store open, so no ``-shm`` file exists and none can be
    made on the full disk: export reads the file immutable instead, and replays."""
    home = small_disk / "home"
    env = make_home(home, 500)
    assert not (home / "ledger.db-wal").exists()
    fill_disk(small_disk)
    before = store_files(home)
    bundle = tmp_path / "brain.tar.zst"
    done = kei(["hibernate", "export", "--out", str(bundle)], env)
    assert done.returncode == 0, done.stderr
    assert store_files(home) == before
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("ledger.db")) == ["ledger.db"]
    verified = kei(["verify-chain"], env)
    assert verified.returncode == 0, verified.stderr
    replayed = kei(["replay", str(bundle), "--db", str(tmp_path / "r.db")], env)
    assert replayed.returncode == 0, replayed.stderr


def test_edited_read_models_are_never_signed(tmp_path: Path, store_url: str) -> None:
    """Rows edited behind kei's back (a cost multiplied, an agent's branch changed)
    change what `cost report` shows, but the bundle exported afterwards is byte for
    byte the one exported before: its digests come from the log, and it replays."""
    home = tmp_path / "home"
    env = cli_env(home, store_url)
    assert kei(["init", "--name", "edited"], env).returncode == 0
    assert kei(["agent", "fork", "a", "main"], env).returncode == 0
    record = ["cost", "record", "a", "--provider", "p", "--model", "m", "--cents", "42"]
    assert kei(record, env).returncode == 0, kei(record, env).stderr
    assert kei(["projections", "status"], env).returncode == 0  # the read models exist
    clean = tmp_path / "clean.tar.zst"
    assert kei(["hibernate", "export", "--out", str(clean)], env).returncode == 0
    run_sql(store_url, "UPDATE costs_events SET micro_cents = micro_cents * 1000")
    run_sql(store_url, "UPDATE agents_agents SET branch = 'forged'")
    edited = tmp_path / "edited.tar.zst"
    done = kei(["hibernate", "export", "--out", str(edited)], env)
    assert done.returncode == 0, done.stderr
    assert edited.read_bytes() == clean.read_bytes()
    restored = tmp_path / "restored.db"
    replayed = kei(["replay", str(edited), "--db", str(restored)], env)
    assert replayed.returncode == 0, replayed.stderr
    assert "matched" in replayed.stdout and "differ" not in replayed.stdout


def test_export_creates_no_read_model_in_the_store(tmp_path: Path) -> None:
    """Export leaves the store's tables as it found them (no read model caught up)."""
    home = tmp_path / "home"
    env = make_home(home, 300)
    url = f"sqlite:///{home / 'ledger.db'}"
    tables = {r[0] for r in run_sql(url, "SELECT name FROM sqlite_master WHERE type='table'")}
    done = kei(["hibernate", "export", "--out", str(tmp_path / "b.tar.zst")], env)
    assert done.returncode == 0, done.stderr
    after = {r[0] for r in run_sql(url, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert after == tables
