"""``kei init`` and ``kei keys new|list|revoke`` through the CLI, on both stores."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli_helpers import cli_env
from kei.adapters.cli.app import app
from kei.adapters.store import open_store


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "home", store_url)


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def count(url: str) -> int:
    store = open_store(url)
    try:
        return store.count()
    finally:
        store.close()


def keys(env: dict[str, str]) -> list[dict[str, object]]:
    result = invoke(env, "keys", "list", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_init_twice_changes_nothing(env: dict[str, str], store_url: str, tmp_path: Path) -> None:
    first = invoke(env, "init")
    assert first.exit_code == 0, first.output
    assert "initialised ledger" in first.stderr
    key_file = tmp_path / "home" / "keys" / "default.key"
    key_bytes, events = key_file.read_bytes(), count(store_url)
    second = invoke(env, "init")
    assert second.exit_code == 0, second.output
    assert "already exists" in second.stderr and "nothing changed" in second.stderr
    assert key_file.read_bytes() == key_bytes
    assert count(store_url) == events == 1


def test_keys_new_writes_a_0600_file_and_a_key_added_event(
    env: dict[str, str], store_url: str, tmp_path: Path
) -> None:
    invoke(env, "init")
    result = invoke(env, "keys", "new", "ci-runner")
    assert result.exit_code == 0, result.output
    path = tmp_path / "home" / "keys" / "ci-runner.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tail = invoke(env, "events", "tail", "-n", "1", "--json")
    added = json.loads(tail.stdout)
    assert added["type"] == "kei.key.added" and added["payload"]["name"] == "ci-runner"
    assert added["payload"]["key_id"] in result.stderr


def test_keys_list_json(env: dict[str, str], tmp_path: Path) -> None:
    invoke(env, "init")
    invoke(env, "keys", "new", "second")
    rows = keys(env)
    assert [(r["name"], r["status"]) for r in rows] == [("default", "active"), ("second", "active")]
    assert rows[1]["local_file"] == str(tmp_path / "home" / "keys" / "second.key")
    assert all(len(str(r["key_id"])) == 16 for r in rows)


def test_keys_revoke_with_reason(env: dict[str, str], store_url: str) -> None:
    invoke(env, "init")
    invoke(env, "keys", "new", "second")
    default_id = keys(env)[0]["key_id"]
    result = invoke(env, "--key", "second", "keys", "revoke", str(default_id), "--reason", "r")
    assert result.exit_code == 0, result.output
    revoked = keys(env)[0]
    assert (revoked["status"], revoked["reason"]) == ("revoked", "r")
    assert count(store_url) == 3
