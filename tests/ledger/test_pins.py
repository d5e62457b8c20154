"""Pinned identity: a history re-signed from a new genesis with a fresh key is a
finding against the pin in KEI_HOME, --expect-ledger / --expect-key and a checkpoint's
kei-genesis line; a genuine ledger is clean. Both stores."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from cli_helpers import cli_env, run_sql
from kei import Ledger, NewEvent
from kei.adapters.files.keyfile import load_key
from kei.adapters.files.pins import pin_path, read_pin
from kei.domain import events
from kei.domain.log.checkpoint import parse_checkpoint
from kei.domain.log.identity import fingerprint, genesis_of, key_matcher, key_matches
from kei.domain.log.keys import SigningKey, key_id_for
from kei.errors import InputError


def invoke(env: dict[str, str], *args: str) -> Result:
    from kei.adapters.cli.app import app

    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(store_url: str, home: Path) -> dict[str, str]:
    return cli_env(home, store_url)


def _fill(url: str, key: SigningKey) -> None:
    with Ledger.open(url, key=key) as ledger:
        for agent in ("a", "b", "c"):
            ledger.append([NewEvent(agent, events.AgentForked(agent_id=agent, branch=agent), 0)])


def _wipe(url: str) -> None:
    """The attacker replaces the whole store (no key of the ledger needed)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    else:
        run_sql(url, "DROP SCHEMA public CASCADE")
        run_sql(url, "CREATE SCHEMA public")


def _forge(url: str, monkeypatch: pytest.MonkeyPatch, ledger_id: str | None) -> SigningKey:
    """Re-sign the whole history from a new genesis with a freshly generated key,
    keeping the ledger id when ``ledger_id`` is given."""
    _wipe(url)
    forger = SigningKey.generate(name="default")
    if ledger_id is not None:
        monkeypatch.setattr("kei.app.ledger.ledger.uuid.uuid4", lambda: uuid.UUID(ledger_id))
    with Ledger.open(url, key=forger, create=True) as ledger:
        ledger.init("kei")
    _fill(url, forger)
    return forger


def _init(env: dict[str, str], home: Path, url: str) -> tuple[str, SigningKey]:
    result = invoke(env, "init")
    assert result.exit_code == 0, result.output
    assert "pinned in" in result.stderr
    key = load_key(home / "keys" / "default.key")
    _fill(url, key)
    with Ledger.open(url, key=key) as ledger:
        return ledger.ledger_id, key


def _kinds(result: Result) -> list[str]:
    return [f["kind"] for f in json.loads(result.stdout)["findings"]]


def test_init_pins_the_ledger_0600_in_a_0700_folder(
    env: dict[str, str], home: Path, store_url: str
) -> None:
    ledger_id, key = _init(env, home, store_url)
    path = pin_path(home, store_url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    pin = read_pin(home, store_url)
    assert pin is not None
    assert (pin.ledger_id, pin.genesis_key) == (ledger_id, fingerprint(key.public_key))
    vkey = invoke(env, "keys", "export", key.key_id_hex, "--vkey").stdout.strip()
    clean = invoke(
        env, "verify-chain", "--json", "--expect-ledger", ledger_id, "--expect-key", vkey
    )
    assert clean.exit_code == 0, clean.output
    assert "pinned" not in clean.stderr  # already pinned by init


@pytest.mark.parametrize("keep_id", [False, True])
def test_a_history_resigned_from_a_new_genesis_is_a_pin_mismatch(
    env: dict[str, str],
    home: Path,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    keep_id: bool,
) -> None:
    ledger_id, key = _init(env, home, store_url)
    vkey = invoke(env, "keys", "export", key.key_id_hex, "--vkey").stdout.strip()
    ckpt = home.parent / "old.ckpt"
    assert invoke(env, "checkpoint", "--out", str(ckpt)).exit_code == 0
    assert genesis_of(parse_checkpoint(ckpt.read_text()).extensions) == fingerprint(key.public_key)
    _forge(store_url, monkeypatch, ledger_id if keep_id else None)
    # the forged log alone verifies clean: only values kept outside it tell
    alone = invoke({**env, "KEI_HOME": str(home.parent / "auditor")}, "verify-chain", "--json")
    assert alone.exit_code == 0, alone.output
    against_pin = invoke(env, "verify-chain", "--json")
    assert against_pin.exit_code == 1
    assert "pin-mismatch" in _kinds(against_pin)
    for flags in (("--expect-key", vkey), ("--expect-key", fingerprint(key.public_key))):
        auditor = {**env, "KEI_HOME": str(home.parent / "auditor2")}
        result = invoke(auditor, "verify-chain", "--json", *flags)
        assert result.exit_code == 1 and _kinds(result) == ["pin-mismatch"], result.output
    by_id = invoke(
        {**env, "KEI_HOME": str(home.parent / "auditor3")},
        "verify-chain", "--json", "--expect-ledger", ledger_id,
    )  # fmt: skip
    assert by_id.exit_code == (0 if keep_id else 1), by_id.output
    auditor = {**env, "KEI_HOME": str(home.parent / "auditor4")}
    with_ckpt = invoke(auditor, "verify-chain", "--json", "--checkpoint", str(ckpt))
    assert with_ckpt.exit_code == 1
    assert "pin-mismatch" in _kinds(with_ckpt)  # the checkpoint's kei-genesis line


def test_first_use_pins_an_unpinned_ledger(
    env: dict[str, str], home: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_id, key = _init(env, home, store_url)
    pin_path(home, store_url).unlink()
    first = invoke(env, "verify-chain")
    assert first.exit_code == 0, first.output
    assert "on first use" in first.stderr and ledger_id in first.stderr
    pin = read_pin(home, store_url)
    assert pin is not None and pin.genesis_key == fingerprint(key.public_key)
    second = invoke(env, "verify-chain")
    assert second.exit_code == 0 and "first use" not in second.stderr
    _forge(store_url, monkeypatch, None)
    assert invoke(env, "verify-chain").exit_code == 1


def test_a_pin_of_another_ledger_is_a_finding(
    env: dict[str, str], home: Path, store_url: str
) -> None:
    _init(env, home, store_url)
    path = pin_path(home, store_url)
    data = json.loads(path.read_text())
    data["ledger_id"] = str(uuid.uuid4())
    path.write_text(json.dumps(data))
    result = invoke(env, "verify-chain", "--json")
    assert result.exit_code == 1 and _kinds(result) == ["pin-mismatch"]


@pytest.mark.parametrize(
    "body", ["", "{", "[]", '{"version": 1, "ledger_id": "x", "genesis_key": "abc"}', "\xff"]
)
def test_a_malformed_pin_is_a_one_line_error(
    env: dict[str, str], home: Path, sqlite_url: str, body: str
) -> None:
    env = {**env, "KEI_DB": sqlite_url}
    assert invoke(env, "init").exit_code == 0
    path = pin_path(home, sqlite_url)
    path.write_bytes(body.encode("latin-1"))
    result = invoke(env, "verify-chain")
    assert result.exit_code == 2, result.output
    assert "pin file" in result.stderr and "Traceback" not in result.output
    assert path.read_bytes() == body.encode("latin-1")  # never rewritten behind the user


def test_expect_key_forms_and_bad_values(env: dict[str, str], home: Path, sqlite_url: str) -> None:
    env = {**env, "KEI_DB": sqlite_url}
    assert invoke(env, "init").exit_code == 0
    key = load_key(home / "keys" / "default.key")
    for form in (key.public_key.hex(), key.key_id_hex, fingerprint(key.public_key)):
        assert invoke(env, "verify-chain", "--expect-key", form).exit_code == 0, form
    other = SigningKey.generate()
    assert invoke(env, "verify-chain", "--expect-key", other.public_key.hex()).exit_code == 1
    bad = invoke(env, "verify-chain", "--expect-key", "nonsense")
    assert bad.exit_code == 2 and "--expect-key" in bad.stderr


def test_key_matcher_forms() -> None:
    key = SigningKey.generate()
    for form in (key.public_key.hex().upper(), key_id_for(key.public_key).hex()):
        assert key_matches(key_matcher(form), key.public_key)
        assert not key_matches(key_matcher(form), SigningKey.generate().public_key)
    with pytest.raises(ValueError):
        key_matcher("a+b+c")


def test_pins_of_two_stores_in_one_home_are_separate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    urls = [f"sqlite:///{tmp_path / n}.db" for n in ("one", "two")]
    for url in urls:
        assert invoke(cli_env(home, url), "init").exit_code == 0
    pins = [read_pin(home, url) for url in urls]
    assert pins[0] is not None and pins[1] is not None
    assert pins[0].ledger_id != pins[1].ledger_id
    assert len(os.listdir(home / "pins")) == 2
    from kei.adapters.files.pins import store_identity

    # a relative path is pinned by its real path
    assert store_identity("sqlite:///./x/../y.db") == f"sqlite:///{Path.cwd() / 'y.db'}"


def test_read_pin_refuses_a_symlink(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    path = pin_path(home, url)
    path.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    path.symlink_to(target)
    with pytest.raises(InputError, match="pin file"):
        read_pin(home, url)


def test_checkpoints_without_or_with_a_bad_genesis_line(
    env: dict[str, str], home: Path, sqlite_url: str, tmp_path: Path
) -> None:
    from kei.domain.log.checkpoint import sign_tree_checkpoint

    env = {**env, "KEI_DB": sqlite_url}
    assert invoke(env, "init").exit_code == 0
    key = load_key(home / "keys" / "default.key")
    cp = parse_checkpoint(invoke(env, "checkpoint").stdout)
    old = tmp_path / "old.ckpt"  # as written before the kei-genesis line existed
    old.write_text(sign_tree_checkpoint(cp.origin, cp.size, cp.root_hash, key))
    assert invoke(env, "verify-chain", "--checkpoint", str(old)).exit_code == 0
    bad = tmp_path / "bad.ckpt"  # signed by the ledger's key, but the line is garbage
    bad.write_text(
        sign_tree_checkpoint(cp.origin, cp.size, cp.root_hash, key, ("kei-genesis nope",))
    )
    result = invoke(env, "verify-chain", "--json", "--checkpoint", str(bad))
    assert result.exit_code == 1 and _kinds(result) == ["pin-mismatch"]


def test_a_pin_that_is_a_folder_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    pin_path(home, url).mkdir(parents=True)
    with pytest.raises(InputError, match="pin file"):
        read_pin(home, url)


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), other=st.binary(min_size=32, max_size=32))
def test_every_key_form_matches_its_key_only(seed: bytes, other: bytes) -> None:
    from kei.domain.log.checkpoint import vkey
    from kei.domain.log.identity import genesis_line

    key = SigningKey(seed)
    forms = (
        vkey("ledger", key.public_key),
        fingerprint(key.public_key),
        key.public_key.hex(),
        key.key_id_hex,
    )
    assert genesis_of((genesis_line(key.public_key),)) == fingerprint(key.public_key)
    for form in forms:
        assert key_matches(key_matcher(form), key.public_key)
        if other != seed:
            assert not key_matches(key_matcher(form), SigningKey(other).public_key)
