"""net.toml and the WireGuard settings: every mistake one line naming the key, no value
able to add a line to the generated file, key files read strictly, digests without keys."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli_env, kei
from kei.adapters.net.settings import parse
from kei.adapters.net.wireguard_conf import effective, parse_wireguard, render
from kei.errors import NetConfigError

PEER = base64.b64encode(bytes(range(32))).decode()


def _key(path: Path, mode: int = 0o600) -> str:
    raw = base64.b64encode(os.urandom(32)).decode()
    path.write_text(raw + "\n")
    path.chmod(mode)
    return raw


def _table(**extra: Any) -> dict[str, Any]:
    return {"mode": "wireguard", "private_key_file": "k", "address": ["10.0.0.1/24"],
            "peers": [{"public_key": PEER, "endpoint": "192.0.2.1:51820",
                       "allowed_ips": ["10.0.0.2/32"]}], **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"interface": "wg0\nPostUp = id"}, "interface"),
        ({"interface": "a-name-too-long-1"}, "interface"),
        ({"address": ["10.0.0.1/24\nPostUp = id"]}, "address"),
        ({"peers": [{"public_key": PEER, "endpoint": "1.2.3.4:5\nPostUp=id"}]}, "endpoint"),
        ({"peers": [{"public_key": PEER, "endpoint": "1.2.3.4:99999"}]}, "endpoint"),
        ({"peers": [{"public_key": "not a key"}]}, "public_key"),
        ({"peers": [{"public_key": PEER, "allowed_ips": ["0.0.0.0/0, ::/0"]}]}, "allowed_ips"),
        ({"peers": [{"public_key": PEER, "PostUp": "id"}]}, "PostUp"),
        ({"PostUp": "id"}, "PostUp"),
        ({"private_key": "inline"}, "private_key"),
        ({"listen_port": 0}, "listen_port"),
        ({"userspace": "boringtun"}, "userspace"),
        ({"allowed_ports": [70000]}, "allowed_ports"),
        ({"netns": "../x"}, "netns"),
        ({"public": "yes"}, "public"),
    ],
)
def test_hostile_values_are_refused_naming_the_key(
    tmp_path: Path, change: dict[str, Any], word: str
) -> None:
    with pytest.raises(NetConfigError, match=word) as caught:
        parse_wireguard("home", _table(**change), tmp_path)
    assert "\n" not in str(caught.value)


def test_the_file_holds_only_checked_lines(tmp_path: Path) -> None:
    private = _key(tmp_path / "k")
    _key(tmp_path / "psk")
    table = _table()
    table["peers"][0]["preshared_key_file"] = "psk"
    s = parse_wireguard("home", table, tmp_path)
    text = render(s)
    assert f"PrivateKey = {private}" in text
    assert {line.split(" = ")[0] for line in text.splitlines() if " = " in line} == {
        "PrivateKey", "Address", "PublicKey", "PresharedKey", "Endpoint", "AllowedIPs"}  # fmt: skip
    assert s.interface == "wg-home"


def test_the_digest_holds_no_key_and_follows_the_key(tmp_path: Path) -> None:
    private = _key(tmp_path / "k")
    s = parse_wireguard("home", _table(), tmp_path)
    first = effective(s)
    assert private not in repr(first)
    _key(tmp_path / "k")
    assert effective(s)["private_key_sha256"] != first["private_key_sha256"]


@pytest.mark.parametrize("how", ["missing", "open", "symlink", "not a key"])
def test_key_files_are_read_strictly(tmp_path: Path, how: str) -> None:
    if how == "open":
        _key(tmp_path / "k", 0o644)
    elif how == "symlink":
        _key(tmp_path / "real")
        (tmp_path / "k").symlink_to(tmp_path / "real")
    elif how == "not a key":
        (tmp_path / "k").write_text("SECRET-NOT-A-KEY")
        (tmp_path / "k").chmod(0o600)
    s = parse_wireguard("home", _table(), tmp_path)
    with pytest.raises(NetConfigError, match="private_key_file") as caught:
        effective(s)
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "word"),
    [
        ({"tunnel": {}}, "tunnel"),
        ({"tunnels": {"a/b": {"mode": "wireguard"}}}, "tunnel name"),
        ({"tunnels": {"a": {"mode": "pptp"}}}, "mode"),
        ({"reconciler": {"poll_s": 0}}, "poll_s"),
        ({"reconciler": {"max_attempts": 1.5}}, "max_attempts"),
        ({"reconciler": {"nope": 1}}, "nope"),
    ],
)
def test_net_toml_mistakes(tmp_path: Path, data: dict[str, Any], word: str) -> None:
    with pytest.raises(NetConfigError, match=word):
        parse(data, "net.toml", tmp_path)


def test_a_broken_net_toml_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert kei(["init"], env).returncode == 0
    (tmp_path / "net.toml").write_text('[tunnels.home]\nmode = "wireguard"\nendpoint = 1\n')
    done = kei(["net", "up", "home"], env)
    assert done.returncode == 2
    assert done.stderr.startswith("kei: error: ") and "Traceback" not in done.stderr
    assert "endpoint" in done.stderr
