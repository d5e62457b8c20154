"""``kei net`` end to end against real WireGuard tunnels (wireguard-go) in two
namespaces: intent, claim and outcome recorded, peers appearing with moving counters,
teardown; and nothing kei prints or signs holds a key."""

from __future__ import annotations

import base64
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from wg_helpers import facing_tables

from cli_helpers import cli_env, kei
from netns import NetnsPair, need_tools

pytestmark = pytest.mark.slow


def _toml(tables: dict[str, dict[str, Any]], extra: str = "") -> str:
    out = [extra]
    for name, t in tables.items():
        out.append(f"[tunnels.{name}]")
        peers = t.pop("peers")
        out += [f"{k} = {json.dumps(v)}" for k, v in t.items()]
        for p in peers:
            out.append(f"[[tunnels.{name}.peers]]")
            out += [f"{k} = {json.dumps(v)}" for k, v in p.items()]
    return "\n".join(out) + "\n"


def _run(env: dict[str, str], *args: str, code: int = 0) -> str:
    done = kei(list(args), env)
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done.stdout + done.stderr


def test_kei_net_up_observe_down(netns_pair: NetnsPair, tmp_path: Path) -> None:
    need_tools("wg", "wg-quick", "wireguard-go", "ping")
    home = tmp_path / "home"
    home.mkdir()
    ta, tb = facing_tables(netns_pair, home)
    text = _toml({"a": ta, "b": tb}, "[reconciler]\nobserve_every_s = 1\nbytes_threshold = 64\n")
    tomllib.loads(text)
    (home / "net.toml").write_text(text)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/systemctl.calls\n')
    (fake / "systemctl").chmod(0o755)
    env = cli_env(home, PATH=f"{fake}:{os.environ['PATH']}")
    _run(env, "init")
    try:
        assert "net a is up" in _run(env, "net", "up", "a")
        assert "net b is up" in _run(env, "net", "up", "b")
        assert netns_pair.ping(netns_pair.a, "10.99.0.2", count=5)
        _run(env, "net", "run", "--once")
        peers = [json.loads(line) for line in _run(env, "net", "peers", "a", "--json").splitlines()
                 if line.startswith("{")]  # fmt: skip
        assert len(peers) == 1 and peers[0]["present"] == 1
        first = peers[0]["rx_bytes"] + peers[0]["tx_bytes"]
        assert first > 0
        assert netns_pair.ping(netns_pair.a, "10.99.0.2", count=5)
        _run(env, "net", "run", "--once")
        again = json.loads(_run(env, "net", "peers", "a", "--json").splitlines()[0])
        assert again["rx_bytes"] + again["tx_bytes"] > first
        status = json.loads(kei(["net", "status", "a", "--json"], env).stdout)
        assert status["phase"] == "up" and status["desired"] == "up" and status["peers"] == 1
        # the same intent again: nothing new to do, nothing appended but observations
        _run(env, "net", "up", "a")
        # lost behind kei's back: recorded as drifted and brought up again
        netns_pair.run(netns_pair.a, "ip", "link", "del", "dev", ta["interface"])
        _run(env, "net", "run", "--once")
        assert netns_pair.ping(netns_pair.a, "10.99.0.2", count=5)
    finally:
        down_a = kei(["net", "down", "a"], env)
        down_b = kei(["net", "down", "b"], env)
    assert down_a.returncode == 0 and down_b.returncode == 0, down_a.stderr + down_b.stderr
    history = [json.loads(x) for x in _run(env, "net", "history", "a", "--json").splitlines()
               if x.startswith("{")]  # fmt: skip
    types = [e["type"] for e in history]
    assert types[:3] == ["net.mode.desired", "net.mode.attempted", "net.mode.configured"]
    assert {"net.peer.appeared", "net.peer.observed", "net.peer.disappeared"} <= set(types)
    assert types[-1] == "net.mode.torn_down"
    assert types.count("net.mode.desired") == 2  # the repeated `up` appended no intent
    assert types.count("net.mode.drifted") == 1 and types.count("net.mode.configured") == 2
    secrets = [p.read_text().strip() for p in (home / "keys").iterdir()]
    everything = _run(env, "events", "tail", "-n", "1000", "--json") + json.dumps(history)
    assert not any(s in everything for s in secrets)
    assert not any((home / "run" / "net" / "wireguard").iterdir())
    assert _run(env, "verify-chain")
    assert not (tmp_path / "systemctl.calls").exists()  # the systemctl-free path


def test_without_wg_quick_up_fails_as_a_recorded_result(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "k").write_text(base64.b64encode(bytes(32)).decode())
    (home / "k").chmod(0o600)
    (home / "net.toml").write_text('[tunnels.home]\nmode = "wireguard"\nprivate_key_file = "k"\n'
                                   '[reconciler]\nmax_attempts = 1\n')  # fmt: skip
    env = cli_env(home)
    _run(env, "init")
    env["PATH"] = str(tmp_path / "empty")
    done = kei(["net", "up", "home"], env)
    assert done.returncode == 1 and "not found" in done.stderr, done.stderr
    failed = json.loads(kei(["net", "status", "home", "--json"], env).stdout)
    assert failed["phase"] == "failed" and failed["last_exit_code"] is None
