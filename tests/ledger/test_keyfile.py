"""Key files: atomic 0600 writes, refusal of open permissions, upstream format."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kei import KeyFileError, SigningKey, load_key, write_key


def test_written_key_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = SigningKey.generate(name="ops")
    path = tmp_path / "keys" / "ops.key"
    write_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("ops.key.tmp").exists()
    loaded = load_key(path)
    assert (loaded.key_id, loaded.name) == (key.key_id, "ops")


def test_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    write_key(path, SigningKey.generate())
    with pytest.raises(KeyFileError, match="already exists"):
        write_key(path, SigningKey.generate())


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o700])
def test_key_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "a.key"
    write_key(path, SigningKey.generate())
    os.chmod(path, mode)
    if mode & 0o077:
        with pytest.raises(KeyFileError, match=f"open to other users \\(mode {mode:04o}\\)"):
            load_key(path)
    else:
        load_key(path)


def test_missing_key_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"no key file at .*nope\.key"):
        load_key(tmp_path / "nope.key")


def test_upstream_kei_ledger_sign_key_loads(tmp_path: Path) -> None:
    """kei-ledger-sign's JSON key files carry over unchanged."""
    key = SigningKey.generate()
    path = tmp_path / "upstream.key"
    path.write_text(
        json.dumps(
            {"version": 1, "private_hex": key.seed.hex(), "public_hex": key.public_key.hex()},
            indent=2,
        )
    )
    os.chmod(path, 0o600)
    assert load_key(path).key_id == key.key_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "is not a kei key"),
        ('{"private_hex": "00", "public_hex": "00"}', "1-byte seed"),
        ('{"public_hex": "00"}', "is not a kei key"),
    ],
    ids=["garbage", "short-seed", "no-seed"],
)
def test_malformed_key_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(body)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_tampered_public_key_is_detected(tmp_path: Path) -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    path = tmp_path / "k.key"
    path.write_text(
        json.dumps(
            {"version": 1, "private_hex": key.seed.hex(), "public_hex": other.public_key.hex()}
        )
    )
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="does not match the seed"):
        load_key(path)
