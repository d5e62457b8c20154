"""``--out`` never clobbers: the store, keys, devices, folders, links, existing files.

Every command that writes a file the user names (``kei hibernate export``, ``kei
checkpoint``, ``kei events export``) is driven with hostile targets; each must exit
non-zero in one line, leave the target exactly as it was and leave no temporary file.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli_env, in_process, kei
from kei.adapters.files.safe_output import OutputFile, Protected, check_output
from kei.errors import InputError

LINKS = ("key-copy.json", "store-hardlink", "key-hardlink", "to-store", "to-key", "to-null",
         "to-folder", "to-existing", "dangling")  # fmt: skip
KINDS = ("store", "store-wal", "store-shm", "store-journal", "store-relative", "key",
         "new-in-keys", "keys-folder", "dev-null", "folder", "fifo", "long", "no-folder",
         "empty", "blank", *LINKS)  # fmt: skip
COMMANDS: dict[str, list[str]] = {
    "bundle": ["hibernate", "export", "--out"],
    "checkpoint": ["checkpoint", "--out"],
    "jsonl": ["events", "export", "--out"],
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger with a few events, and a folder of hostile targets beside it."""
    home = tmp_path_factory.mktemp("out") / "home"
    env = cli_env(home)
    assert kei(["init", "--name", "out"], env).returncode == 0
    assert kei(["agent", "fork", "a", "main"], env).returncode == 0
    bad = home.parent / "bad"
    bad.mkdir()
    (bad / "folder").mkdir()
    (bad / "existing.txt").write_text("keep me\n")
    shutil.copy(home / "keys" / "default.key", bad / "key-copy.json")
    (bad / "key-copy.json").chmod(0o600)
    os.link(home / "ledger.db", bad / "store-hardlink")
    os.link(home / "keys" / "default.key", bad / "key-hardlink")
    os.mkfifo(bad / "fifo")
    for name, to in [
        ("to-store", home / "ledger.db"),
        ("to-key", home / "keys" / "default.key"),
        ("to-null", Path("/dev/null")),
        ("to-folder", bad / "folder"),
        ("to-existing", bad / "existing.txt"),
        ("dangling", bad / "nowhere"),
    ]:
        (bad / name).symlink_to(to)
    return home


def targets(home: Path) -> dict[str, str]:
    """Every hostile ``--out``: refused with or without ``--force`` (except
    ``existing``, refused without it)."""
    bad = home.parent / "bad"
    named = {
        "store": home / "ledger.db",
        "store-wal": home / "ledger.db-wal",
        "store-shm": home / "ledger.db-shm",
        "store-journal": home / "ledger.db-journal",
        "store-relative": home / "keys" / ".." / "ledger.db",
        "key": home / "keys" / "default.key",
        "new-in-keys": home / "keys" / "fresh.key",
        "keys-folder": home / "keys",
        "dev-null": Path("/dev/null"),
        "folder": bad / "folder",
        "fifo": bad / "fifo",
        "long": bad / ("x" * 300),
        "no-folder": bad / "missing" / "out",
        **{name: bad / name for name in LINKS},
    }
    return {k: str(v) for k, v in named.items()} | {"empty": "", "blank": "  "}


def state(path: str) -> Any:
    """What must not change: the kind, identity and bytes of what ``path`` names."""
    if not path.strip():
        return None
    p = Path(path)
    try:
        info = p.lstat()
    except OSError as exc:
        return type(exc).__name__
    body = p.read_bytes() if stat.S_ISREG(info.st_mode) else None
    link = os.readlink(p) if stat.S_ISLNK(info.st_mode) else None
    return (info.st_mode, info.st_ino, info.st_dev, info.st_rdev, info.st_size, body, link)


def listing(home: Path) -> set[str]:
    """Every file name under the test folders (a temporary file would show here)."""
    return {
        str(p.relative_to(home.parent))
        for p in home.parent.rglob("*")
        if not p.name.startswith("ledger.db-")  # SQLite's own, while a store is open
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    kind=st.sampled_from(KINDS),
    force=st.booleans(),
)
def test_hostile_out_is_refused_and_touches_nothing(
    home: Path, command: str, kind: str, force: bool
) -> None:
    target = targets(home)[kind]
    before, files = state(target), listing(home)
    store = (home / "ledger.db").read_bytes()
    run = in_process(cli_env(home))
    done = run(*COMMANDS[command], target, *(["--force"] if force else []), code=None)
    assert done.exit_code == 2, (kind, done.stdout, done.stderr)
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "Traceback" not in done.stderr and done.stderr.startswith("kei: error: ")
    assert len(done.stderr.splitlines()) <= 2
    assert state(target) == before
    assert listing(home) == files
    assert (home / "ledger.db").read_bytes() == store


@settings(max_examples=40, deadline=None)
@given(name=st.text(min_size=1, max_size=400))
def test_any_name_is_written_or_refused_in_one_line(tmp_path_factory: Any, name: str) -> None:
    """Generated names (control characters, surrogates, NUL, slashes, very long):
    the check either accepts a path in an existing folder or says why in one line."""
    folder = tmp_path_factory.mktemp("names")
    try:
        target = check_output(folder / name, Protected(), force=False)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert target.parent.is_dir() and not target.exists()


def test_existing_file_needs_force(home: Path) -> None:
    bad = home.parent / "bad"
    target = bad / "existing.txt"
    run = in_process(cli_env(home))
    for command in COMMANDS.values():
        run(*command, str(target), code=2)
        assert target.read_text() == "keep me\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_new_file_then_force_replaces_it(home: Path, command: str, tmp_path: Path) -> None:
    target = tmp_path / f"out.{command}"
    run = in_process(cli_env(home))
    run(*COMMANDS[command], str(target))
    first = target.read_bytes()
    assert first
    again = run(*COMMANDS[command], str(target), code=2)
    assert "--force" in again.stderr
    target.write_bytes(b"old")
    inode = target.stat().st_ino
    run(*COMMANDS[command], str(target), "--force")
    assert target.read_bytes() == first and target.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("command", ["checkpoint", "jsonl"])
def test_dash_is_stdout(home: Path, command: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    done = in_process(cli_env(home))(*COMMANDS[command], "-")
    assert done.stdout.strip() and list(tmp_path.iterdir()) == []


def test_bundle_to_stdout_is_refused(home: Path, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    done = in_process(cli_env(home))(*COMMANDS["bundle"], "-", code=2)
    assert "not to stdout" in done.stderr and list(tmp_path.iterdir()) == []


@pytest.fixture
def interrupted() -> Iterator[Callable[[OutputFile], None]]:
    def write(out: OutputFile) -> None:
        out.fh.write(b"half")
        raise KeyboardInterrupt

    yield write


@pytest.mark.parametrize("exists", [False, True])
def test_ctrl_c_leaves_the_target_and_no_temporary_file(
    tmp_path: Path, interrupted: Callable[[OutputFile], None], exists: bool
) -> None:
    target = tmp_path / "out"
    if exists:
        target.write_bytes(b"before")
    with pytest.raises(KeyboardInterrupt), OutputFile(target, Protected(), force=True) as out:
        interrupted(out)
    assert [p.name for p in tmp_path.iterdir()] == (["out"] if exists else [])
    if exists:
        assert target.read_bytes() == b"before"


def test_a_file_that_appears_meanwhile_is_not_clobbered(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with OutputFile(target, Protected()) as out:
        out.fh.write(b"ours")
        target.write_bytes(b"theirs")
        with pytest.raises(InputError, match="appeared"):
            out.commit()
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_target_swapped_for_a_device_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old")
    with OutputFile(target, Protected(), force=True) as out:
        out.fh.write(b"new")
        target.unlink()
        target.symlink_to("/dev/null")
        with pytest.raises(InputError, match="changed"):
            out.commit()
    assert target.is_symlink() and os.readlink(target) == "/dev/null"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_every_kind_is_driven(home: Path) -> None:
    assert set(targets(home)) == set(KINDS)


def test_leftovers_of_killed_writers_are_swept_live_ones_kept(tmp_path: Path) -> None:
    """What a writer killed outright left (its lock died with it) goes at the next
    write to the same name; what a live writer holds stays."""
    import fcntl

    target = tmp_path / "out"
    dead_tmp = tmp_path / ".out.0123456789ab.tmp"
    dead_tmp.write_bytes(b"half")
    dead_folder = tmp_path / ".out.abcdefgh"
    dead_folder.mkdir()
    (dead_folder / ".held").touch()
    (dead_folder / "segment").write_bytes(b"spooled")
    live_tmp = tmp_path / ".out.ba9876543210.tmp"
    live_tmp.write_bytes(b"being written")
    unrelated = tmp_path / ".out.notours"
    unrelated.write_bytes(b"keep")
    fd = os.open(live_tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        from kei.adapters.files.safe_output import write_bytes

        write_bytes(target, Protected(), b"new")
        names = sorted(p.name for p in tmp_path.iterdir())
    finally:
        os.close(fd)
    assert names == [".out.ba9876543210.tmp", ".out.notours", "out"]
    assert target.read_bytes() == b"new"


def test_a_killed_export_leaves_nothing_after_the_next_one(home: Path, tmp_path: Path) -> None:
    """SIGKILL mid-export, then export again to the same name: only the bundle stays."""
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "b.tar.zst"
    env = cli_env(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kei", "hibernate", "export", "--out", str(target)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".b.tar.zst.*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".b.tar.zst.*")), "killed too late: nothing was left"
    assert kei(["hibernate", "export", "--out", str(target), "--force"], env).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["b.tar.zst"]
