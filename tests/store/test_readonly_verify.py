"""``kei verify-chain`` (and ``events tail`` / ``events export``) read a read-only copy
of a ledger and write nothing to it.

Tests may run as root, for whom file modes stop no write, so the promise is checked
three ways: on a real read-only mount (``mount -o ro``, skipped where mounting is not
allowed), on a 0444 file in a 0555 folder (the file's bytes, mtime and the folder's
entries unchanged), and by the URI the store is opened with.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundle_helpers import fill
from cli_helpers import cli_env, kei
from kei import Ledger
from kei.adapters.files.keyfile import load_key
from kei.adapters.store import open_store
from kei.adapters.store.sqlite import SQLiteStore, read_only_uri


def _ledger(home: Path) -> Path:
    """A ledger made by ``kei init``, with 300 more events (4 ranges of 100 below)."""
    assert kei(["init"], cli_env(home)).returncode == 0
    key = load_key(home / "keys" / "default.key")
    with Ledger.open(f"sqlite:///{home / 'ledger.db'}", key=key) as ledger:
        fill(ledger, 300)
    return home / "ledger.db"


def _fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


@contextlib.contextmanager
def read_only_mount(folder: Path) -> Iterator[None]:
    """``folder`` as a read-only tmpfs holding what it holds now."""
    staged = folder.with_name(folder.name + ".staged")
    shutil.copytree(folder, staged)
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if tried.returncode != 0:
        pytest.skip(f"cannot mount here: {tried.stderr.strip() or tried.returncode}")
    try:
        for p in staged.iterdir():
            shutil.copy2(p, folder / p.name)
        remount = subprocess.run(
            ["mount", "-o", "remount,ro", str(folder)], capture_output=True, check=False
        )
        assert remount.returncode == 0, remount.stderr
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_verify_chain_on_a_read_only_mount(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = _ledger(home)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy2(db, copy / "ledger.db")
    with read_only_mount(copy):
        before = _fingerprint(copy)
        for args in (
            ["verify-chain"],
            ["verify-chain", "--json"],
            ["verify-chain", "-j", "2"],
            ["events", "tail"],
            ["events", "export"],
        ):
            done = kei(["--db", str(copy / "ledger.db"), *args], cli_env(home))
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
        assert _fingerprint(copy) == before


def test_verify_chain_on_a_read_only_file_in_a_read_only_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = _ledger(home)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy2(db, copy / "ledger.db")
    (copy / "ledger.db").chmod(0o444)
    copy.chmod(0o555)
    try:
        before = _fingerprint(copy)
        done = kei(["--db", str(copy / "ledger.db"), "verify-chain"], cli_env(home))
        assert done.returncode == 0, done.stderr
        assert "kei: OK: 301 events verified" in done.stderr
        assert _fingerprint(copy) == before  # no -wal, no -shm, same bytes and mtime
    finally:
        copy.chmod(0o755)


def test_read_only_opening_refuses_writes_and_leaves_no_files(tmp_path: Path) -> None:
    """A ledger kei may write is opened as usual but query_only (so closing removes
    the -wal and -shm as always); one it may not write gets a ``mode=ro`` URI."""
    home = tmp_path / "home"
    db = _ledger(home)
    before = sorted(p.name for p in db.parent.iterdir())
    uri = read_only_uri(db)
    assert uri == str(db)
    store = open_store(f"sqlite:///{db}", read_only=True)
    try:
        assert isinstance(store, SQLiteStore) and store.read_only
        assert store.count() == 301
        with (
            pytest.raises(Exception, match=r"readonly|read-only|read only"),
            store._datastore.transaction(commit=True) as c,
        ):
            c.execute("CREATE TABLE sneaky (x)")
    finally:
        store.close()
    assert sorted(p.name for p in db.parent.iterdir()) == before
    db.chmod(0o444)
    ro = read_only_uri(db)
    assert ro.startswith("file://") and "mode=ro" in ro and "immutable=1" in ro


def test_immutable_is_never_used_while_a_write_ahead_log_holds_events(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    import sqlite3

    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x)")
    writer.execute("INSERT INTO t VALUES (1)")
    writer.commit()
    try:
        assert (tmp_path / "l.db-wal").stat().st_size > 0
        db.chmod(0o444)
        assert "immutable=1" not in read_only_uri(db)
        (tmp_path / "l.db-wal").write_bytes(b"")
        assert "immutable=1" in read_only_uri(db)
    finally:
        writer.close()
