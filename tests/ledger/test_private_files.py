"""Key files, KEI_HOME and new stores: only the user's own, private files are used
or made, and every path kei cannot use is one line, never a traceback.

Real files through the real CLI (``python -m kei``). Some checks need root (to hand a
file to another user); they are skipped, with the reason, otherwise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli_env, kei
from kei import SigningKey
from kei.adapters.files.keyfile import load_key, write_key
from kei.errors import KeyFileError

ROOT = os.geteuid() == 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _one_line_error(done: object, code: int, *words: str) -> None:
    out = getattr(done, "stderr", "")
    assert getattr(done, "returncode", None) == code, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("kei: error: ")]
    assert len(errors) == 1, out
    for word in words:
        assert word in errors[0], out


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_init_makes_home_and_keys_0700_and_the_store_0600_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    home = tmp_path / "deep" / "home"
    old = os.umask(umask)
    try:
        done = kei(["init"], cli_env(home))
        assert done.returncode == 0, done.stderr
        # a write leaves the -wal and -shm files behind while a connection is open;
        # SQLite gives them the database file's mode
        import sqlite3

        conn = sqlite3.connect(home / "ledger.db")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        try:
            for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
                assert _mode(home / name) == 0o600, name
        finally:
            conn.close()
    finally:
        os.umask(old)
    assert _mode(home) == 0o700
    assert _mode(home / "keys") == 0o700
    assert _mode(home / "keys" / "default.key") == 0o600
    assert "WARNING" not in done.stderr


@pytest.mark.parametrize("mode, who", [(0o777, "everyone"), (0o770, "its group")])
def test_a_home_others_can_write_is_warned_about_in_one_line(
    tmp_path: Path, mode: int, who: str
) -> None:
    home = tmp_path / "home"
    assert kei(["init"], cli_env(home)).returncode == 0
    home.chmod(mode)
    done = kei(["verify-chain"], cli_env(home))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("kei: WARNING: ")]
    assert len(warnings) == 1 and who in warnings[0] and "chmod 700" in warnings[0]


def test_a_home_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    for args in (["init"], ["verify-chain"], ["keys", "list"]):
        _one_line_error(kei(args, cli_env(home)), 2, "KEI_HOME", "not a folder")
    assert home.read_text() == "not a folder"


@pytest.mark.parametrize(
    "make_path",
    [
        lambda tmp: tmp / ("x" * 300 + ".key"),  # ENAMETOOLONG
        lambda tmp: tmp / "file" / "k.key",  # ENOTDIR
        lambda tmp: Path(str(tmp / "a/") * 400) / "k.key",  # path too long
        lambda tmp: tmp / "loop" / "k.key",  # ELOOP
    ],
    ids=["name-too-long", "not-a-dir", "path-too-long", "loop"],
)
def test_a_key_path_that_cannot_be_looked_at_is_one_line(tmp_path: Path, make_path: object) -> None:
    home = tmp_path / "home"
    assert kei(["init"], cli_env(home)).returncode == 0
    (tmp_path / "file").write_text("x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    path = make_path(tmp_path)  # type: ignore[operator]
    for args in (["--key", str(path), "checkpoint"], ["--key", str(path), "keys", "list"]):
        done = kei(args, cli_env(home))
        if args[-1] == "list" and done.returncode == 0:
            continue  # `keys list` does not need the key
        _one_line_error(done, 2, "key")


def test_a_key_reached_through_a_symlink_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert kei(["init"], cli_env(home)).returncode == 0
    real = home / "keys" / "default.key"
    link = tmp_path / "link.key"
    link.symlink_to(real)
    done = kei(["--key", str(link), "checkpoint"], cli_env(home))
    _one_line_error(done, 2, "symbolic link")
    assert "kei: hint: " in done.stderr
    with pytest.raises(KeyFileError, match="symbolic link"):
        load_key(link)
    # the keys folder's own entry may not be a link either
    real.rename(tmp_path / "moved.key")
    real.symlink_to(tmp_path / "moved.key")
    _one_line_error(kei(["checkpoint"], cli_env(home)), 2, "symbolic link")


@pytest.mark.skipif(not ROOT, reason="handing a file to another user needs root")
def test_a_key_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert kei(["init"], cli_env(home)).returncode == 0
    path = home / "keys" / "default.key"
    os.chown(path, 65534, 65534)
    done = kei(["checkpoint"], cli_env(home))
    _one_line_error(done, 2, "belongs to another user", "uid 65534")
    assert "kei: hint: " in done.stderr


def test_a_key_open_to_others_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_key(path, SigningKey.generate(name="k"))
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="open to other users"):
        load_key(path)


def test_a_key_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "k.key"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(folder)
    fifo = tmp_path / "f.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(fifo)  # refused before it is opened: a FIFO would block


def test_write_key_makes_missing_folders_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "a" / "b" / "k.key"
        write_key(path, SigningKey.generate(name="k"))
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700
    assert load_key(path).name == "k"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(min_size=1, max_size=600))
def test_any_key_path_is_a_key_or_one_key_file_error(tmp_path: Path, name: str) -> None:
    """Whatever the path (NUL bytes, '..', very long, control characters), loading a key
    either works or raises one KeyFileError of one line."""
    try:
        load_key(tmp_path / name)
    except KeyFileError as exc:
        assert "\n" not in str(exc)
