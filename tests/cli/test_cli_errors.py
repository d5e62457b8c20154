"""Bad input through the real CLI: one ``kei: error:`` line, the right exit code, no
traceback, and nothing appended or written.

Each case runs ``python -m kei`` in a child process, as a user would, against a real
SQLite file (or an unreachable PostgreSQL), and compares the store before and after.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei
from kei.adapters.cli.exits import Exit
from kei.adapters.store import open_store

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/x"


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines and lines[0].startswith("kei: error: "), proc.stderr
    assert text in lines[0], lines[0]
    assert all(line.startswith("kei: hint: ") for line in lines[1:]), proc.stderr
    assert len(lines) <= 2
    assert proc.stdout == ""


def snapshot(home: Path) -> dict[str, str]:
    """Digest of every file under ``home`` (database, WAL, key files)."""
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    }


def count(url: str) -> int:
    store = open_store(url)
    try:
        return store.count()
    finally:
        store.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised ledger with one key, in its own KEI_HOME."""
    home = tmp_path / "home"
    proc = kei(["init"], cli_env(home))
    assert proc.returncode == 0, proc.stderr
    return home


@pytest.fixture
def url(home: Path) -> str:
    return f"sqlite:///{home / 'ledger.db'}"


def unchanged(
    home: Path, url: str, run: Callable[[], subprocess.CompletedProcess[str]]
) -> subprocess.CompletedProcess[str]:
    """Run a failing command and check the ledger and key files did not change."""
    events, keys = count(url), sorted(p.name for p in (home / "keys").iterdir())
    proc = run()
    assert count(url) == events
    assert sorted(p.name for p in (home / "keys").iterdir()) == keys
    return proc


COMMANDS = [
    pytest.param(["events", "tail"], id="tail"),
    pytest.param(["keys", "list"], id="keys-list"),
    pytest.param(["keys", "new", "extra"], id="keys-new"),
    pytest.param(["keys", "revoke", "0123456789abcdef", "--reason", "r"], id="keys-revoke"),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_missing_database_file(home: Path, args: list[str]) -> None:
    missing = home / "elsewhere" / "ledger.db"
    proc = kei(args, cli_env(home, f"sqlite:///{missing}"))
    assert_one_line_error(proc, Exit.STORE, "no ledger at")
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize("args", [*COMMANDS, pytest.param(["init"], id="init")])
def test_corrupt_database_file(home: Path, args: list[str]) -> None:
    corrupt = home / "corrupt.db"
    corrupt.write_bytes(os.urandom(8192))
    before = snapshot(home)
    proc = kei(args, cli_env(home, str(corrupt)))
    assert_one_line_error(proc, Exit.STORE, "not a readable SQLite database")
    assert snapshot(home) == before


@pytest.mark.parametrize("args", [*COMMANDS, pytest.param(["init"], id="init")])
def test_wrong_url_scheme(home: Path, args: list[str]) -> None:
    before = snapshot(home)
    proc = kei(args, cli_env(home, "mysql://x"))
    assert_one_line_error(proc, Exit.USAGE, "unsupported store URL 'mysql://x'")
    assert snapshot(home) == before


@pytest.mark.parametrize("args", [COMMANDS[0], COMMANDS[2], pytest.param(["init"], id="init")])
def test_unreachable_postgres(home: Path, args: list[str]) -> None:
    before = snapshot(home)
    proc = kei(args, cli_env(home, UNREACHABLE_PG))
    assert_one_line_error(proc, Exit.STORE, "cannot connect to PostgreSQL")
    assert snapshot(home) == before


@pytest.mark.parametrize("args", COMMANDS[2:])
def test_missing_key_file(home: Path, url: str, args: list[str]) -> None:
    proc = unchanged(home, url, lambda: kei(["--key", "nosuch", *args], cli_env(home)))
    assert_one_line_error(proc, Exit.USAGE, "no key file at")


@pytest.mark.parametrize("args", COMMANDS[2:])
def test_key_file_readable_by_others_is_refused(home: Path, url: str, args: list[str]) -> None:
    (home / "keys" / "default.key").chmod(0o644)
    proc = unchanged(home, url, lambda: kei(args, cli_env(home)))
    assert_one_line_error(proc, Exit.USAGE, "is open to other users (mode 0644)")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["events", "tail", "--bogus"], "No such option: --bogus"),
        (["events", "tail", "-n", "-1"], "Invalid value for '-n'"),
        (["keys", "new", "a", "b"], "unexpected extra argument"),
        (["keys", "revoke"], "Missing argument"),
        (["no-such-command"], "No such command"),
    ],
    ids=["global", "tail", "tail-negative-n", "extra-arg", "missing-arg", "command"],
)
def test_bad_flag(home: Path, url: str, args: list[str], text: str) -> None:
    proc = unchanged(home, url, lambda: kei(args, cli_env(home)))
    assert_one_line_error(proc, Exit.USAGE, text)


@pytest.mark.parametrize("key_id", ["0123456789abcdef", "zz"], ids=["unknown", "malformed"])
def test_revoke_unknown_key(home: Path, url: str, key_id: str) -> None:
    args = ["keys", "revoke", key_id, "--reason", "r"]
    proc = unchanged(home, url, lambda: kei(args, cli_env(home)))
    assert_one_line_error(proc, Exit.USAGE, f"no key '{key_id}' in this ledger")


def _key_id(home: Path, name: str) -> str:
    listing = kei(["keys", "list"], cli_env(home)).stdout.splitlines()
    return next(line.split("\t")[0] for line in listing if line.split("\t")[2] == name)


def test_revoke_last_active_key(home: Path, url: str) -> None:
    args = ["keys", "revoke", _key_id(home, "default"), "--reason", "r"]
    proc = unchanged(home, url, lambda: kei(args, cli_env(home)))
    assert_one_line_error(proc, Exit.USAGE, "is the last active key")


def test_signing_with_a_revoked_key(home: Path, url: str) -> None:
    assert kei(["keys", "new", "second"], cli_env(home)).returncode == 0
    default_id = _key_id(home, "default")
    revoke = ["--key", "second", "keys", "revoke", default_id, "--reason", "leaked"]
    assert kei(revoke, cli_env(home)).returncode == 0
    proc = unchanged(home, url, lambda: kei(["keys", "new", "third"], cli_env(home)))
    assert_one_line_error(proc, Exit.USAGE, f"key {default_id} (default) was revoked")
    assert not (home / "keys" / "third.key").exists()
