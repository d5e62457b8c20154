"""``kei keys import FILE``: an existing key file (kei-ledger-sign's format) becomes a
registered key of the ledger, signed by --key; every bad file is a one-line refusal
that changes nothing. Both stores."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env
from kei import Ledger, NewEvent
from kei.adapters.files.keyfile import load_key
from kei.adapters.store import open_store
from kei.domain import events
from kei.domain.log.keys import SigningKey


def invoke(env: dict[str, str], *args: str) -> Result:
    from kei.adapters.cli.app import app

    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(store_url: str, home: Path) -> dict[str, str]:
    env = cli_env(home, store_url)
    assert invoke(env, "init").exit_code == 0
    return env


def upstream_key_file(path: Path, key: SigningKey | None = None) -> tuple[Path, SigningKey]:
    """A key file as kei-ledger-sign writes it: no name, mode 0600."""
    key = key or SigningKey.generate()
    body = {"version": 1, "private_hex": key.seed.hex(), "public_hex": key.public_key.hex()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh)
    return path, key


def count(url: str) -> int:
    store = open_store(url)
    try:
        return store.count()
    finally:
        store.close()


def test_an_imported_key_signs_appends_that_verify(
    env: dict[str, str], home: Path, store_url: str, tmp_path: Path
) -> None:
    path, key = upstream_key_file(tmp_path / "upstream.key")
    result = invoke(env, "keys", "import", str(path), "--name", "ci")
    assert result.exit_code == 0, result.output
    assert key.key_id_hex in result.stderr
    copy = home / "keys" / "ci.key"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert load_key(copy).public_key == key.public_key
    listed = [
        json.loads(line) for line in invoke(env, "keys", "list", "--json").stdout.splitlines()
    ]
    assert {(row["key_id"], row["name"], row["status"]) for row in listed} >= {
        (key.key_id_hex, "ci", "active")
    }
    with Ledger.open(store_url, key=load_key(copy)) as ledger:
        ledger.append([NewEvent("a", events.AgentForked(agent_id="a", branch="a"), 0)])
    assert invoke(env, "verify-chain").exit_code == 0
    signed = invoke({**env, "KEI_KEY": "ci"}, "checkpoint")
    assert signed.exit_code == 0, signed.output


def test_import_defaults_to_the_files_name(env: dict[str, str], home: Path, tmp_path: Path) -> None:
    path, _ = upstream_key_file(tmp_path / "runner-7.key")
    assert invoke(env, "keys", "import", str(path)).exit_code == 0
    assert (home / "keys" / "runner-7.key").is_file()


def test_a_key_file_already_in_the_keys_folder_is_registered_in_place(
    env: dict[str, str], home: Path
) -> None:
    path, _ = upstream_key_file(home / "keys" / "placed.key")
    before = path.read_bytes()
    result = invoke(env, "keys", "import", str(path))
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == before


def refused(env: dict[str, str], url: str, *args: str, says: str) -> Result:
    before = count(url)
    result = invoke(env, "keys", "import", *args)
    assert result.exit_code != 0, result.output
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) <= 2  # error and hint
    assert count(url) == before
    return result


def test_refusals_change_nothing(
    env: dict[str, str], home: Path, store_url: str, tmp_path: Path
) -> None:
    keys_before = sorted(os.listdir(home / "keys"))
    refused(env, store_url, str(home / "keys" / "default.key"), says="already registered")
    bad = tmp_path / "bad.key"
    bad.write_text("{not json")
    bad.chmod(0o600)
    refused(env, store_url, str(bad), says="is not a kei key")
    opened, _ = upstream_key_file(tmp_path / "open.key")
    opened.chmod(0o644)
    refused(env, store_url, str(opened), says="open to other users")
    real, _ = upstream_key_file(tmp_path / "real.key")
    link = tmp_path / "link.key"
    link.symlink_to(real)
    refused(env, store_url, str(link), says="symbolic link")
    refused(env, store_url, str(tmp_path / "missing.key"), says="no key file")
    refused(env, store_url, str(real), "--name", "../x", says="bad key name")
    refused(env, store_url, str(real), "--name", "default", says="already exists")
    assert sorted(os.listdir(home / "keys")) == keys_before


def test_importing_twice_is_refused(
    env: dict[str, str], home: Path, store_url: str, tmp_path: Path
) -> None:
    path, _ = upstream_key_file(tmp_path / "twice.key")
    assert invoke(env, "keys", "import", str(path)).exit_code == 0
    refused(env, store_url, str(path), "--name", "again", says="already registered")
    assert not (home / "keys" / "again.key").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_another_users_file_is_refused(env: dict[str, str], store_url: str, tmp_path: Path) -> None:
    path, _ = upstream_key_file(tmp_path / "theirs.key")
    os.chown(path, 12345, 12345)
    refused(env, store_url, str(path), says="belongs to another user")


def test_an_unregistered_key_is_told_to_import(
    env: dict[str, str], store_url: str, tmp_path: Path
) -> None:
    path, _ = upstream_key_file(tmp_path / "stranger.key")
    result = invoke({**env, "KEI_KEY": str(path)}, "keys", "new", "x")
    assert result.exit_code != 0
    assert "kei keys import" in result.stderr
