"""``kei net`` end to end with OpenVPN and IPsec tunnels between two namespaces: an
OpenVPN server (a) and client (b) started by kei, two strongSwan daemons (one per
namespace and mount namespace) loaded by kei through VICI; peers recorded with their
identities (common name, IKE identity) and real last-seen times; nothing signed holds a
key. Runs once ``kei net`` (the CLI, the reconciler, the registry) is in this tree."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from cli_helpers import cli_env, kei
from netns import NetnsPair, need_tools
from vpn_ns import make_pki, start_charon

pytestmark = pytest.mark.slow
PSK = "kei-test-psk-0123456789abcdef"


def _registered() -> None:
    if importlib.util.find_spec("kei.adapters.net.modes") is None:
        pytest.skip("kei net's registry (kei.adapters.net.modes) is not in this tree yet")
    from kei.adapters.net.modes import BUILDERS

    assert {"openvpn", "ipsec"} <= set(BUILDERS), "register build_openvpn and build_ipsec"


def _run(env: dict[str, str], *args: str) -> str:
    done = kei(list(args), env)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout + done.stderr


def _peers(env: dict[str, str], name: str) -> list[dict[str, object]]:
    out = _run(env, "net", "peers", name, "--json")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _net_toml(pair: NetnsPair, vici_a: Path, vici_b: Path) -> str:
    ovpn = 'mode = "openvpn"\nport = 11950\nlaunch = "direct"\nca_file = "pki/ca.crt"\n'
    ipsec = 'mode = "ipsec"\npsk_file = "psk"\nencap = true\n'
    return f"""[reconciler]
observe_every_s = 1
bytes_threshold = 64

[tunnels.office]
{ovpn}subnet = "10.8.32.0/24"
local = "{pair.a_addr}"
netns = "{pair.a}"
cert_file = "pki/server.crt"
key_file = "pki/server.key"

[tunnels.home]
{ovpn}role = "client"
remote = "{pair.a_addr}"
server_name = "server"
netns = "{pair.b}"
cert_file = "pki/client.crt"
key_file = "pki/client.key"

[tunnels.branch]
{ipsec}vici_socket = "{vici_a}"
local_addrs = ["{pair.a_addr}"]
remote_addrs = ["{pair.b_addr}"]
local_id = "a.kei.test"
remote_id = "b.kei.test"
local_ts = ["10.99.1.0/24"]
remote_ts = ["10.99.2.0/24"]

[tunnels.hq]
{ipsec}vici_socket = "{vici_b}"
local_addrs = ["{pair.b_addr}"]
local_id = "b.kei.test"
remote_id = "a.kei.test"
local_ts = ["10.99.2.0/24"]
remote_ts = ["10.99.1.0/24"]
"""


def test_kei_net_with_openvpn_and_ipsec(netns_pair: NetnsPair, tmp_path: Path) -> None:
    _registered()
    need_tools("openvpn", "openssl", "ping")
    home = tmp_path / "home"
    home.mkdir()
    make_pki(home / "pki")
    vici_a, charon_a = start_charon(netns_pair.a, tmp_path / "charon-a")
    vici_b, charon_b = start_charon(netns_pair.b, tmp_path / "charon-b")
    netns_pair.run(netns_pair.a, "ip", "addr", "add", "10.99.1.1/32", "dev", "lo")
    netns_pair.run(netns_pair.b, "ip", "addr", "add", "10.99.2.1/32", "dev", "lo")
    (home / "psk").write_text(PSK + "\n")
    (home / "psk").chmod(0o600)
    (home / "net.toml").write_text(_net_toml(netns_pair, vici_a, vici_b))
    env = cli_env(home)
    _run(env, "init")
    names = ("office", "home", "hq", "branch")  # the responder (hq) before the initiator
    try:
        for name in names:
            assert f"net {name} is up" in _run(env, "net", "up", name)
        deadline = time.monotonic() + 60
        while not _peers(env, "office") and time.monotonic() < deadline:
            _run(env, "net", "run", "--once")
            time.sleep(0.3)
        assert netns_pair.ping(netns_pair.b, "10.8.32.1", count=3)
        done = netns_pair.run(netns_pair.a, "ping", "-c", "3", "-i", "0.2", "-I", "10.99.1.1",
                              "10.99.2.1", check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout
        _run(env, "net", "run", "--once")
        seen = {name: _peers(env, name) for name in names}
        assert [p["peer_id"] for p in seen["office"]] == ["alice"]
        assert [p["peer_id"] for p in seen["home"]] == ["server"]
        assert [p["peer_id"] for p in seen["branch"]] == ["b.kei.test"]
        assert [p["peer_id"] for p in seen["hq"]] == ["a.kei.test"]
        assert seen["office"][0]["last_seen_at"] is not None
        assert seen["home"][0]["last_seen_at"] is None  # a client cannot know: not invented
        assert all(p["rx_bytes"] and p["tx_bytes"] for ps in seen.values() for p in ps)
        history = _run(env, "net", "history", "office") + _run(env, "net", "history", "hq")
        assert "backend_version=OpenVPN 2." in history and "net.peer.appeared" in history
        assert PSK not in history and "PRIVATE KEY" not in history
    finally:
        for name in reversed(names):
            kei(["net", "down", name], env)
        for charon in (charon_a, charon_b):
            charon.terminate()
            charon.wait(timeout=10)
